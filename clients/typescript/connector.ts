/**
 * A PowerSync backend connector for uplink: copy this file into your app.
 *
 * - fetchCredentials() gets a PowerSync token from uplink's token endpoint, or
 *   returns null while the user is signed out (`authHeaders` returns null).
 *   getToken() hands out the same token, cached until shortly before it
 *   expires: give it to the attachment adapter (attachments.ts).
 * - uploadData() sends whole client transactions, several per request (up to
 *   `maxEntriesPerRequest` entries), in order, to POST /api/data with the
 *   database's client id, so uplink applies every entry exactly once. Each
 *   request's transactions are completed only after uplink answered 200.
 *
 * What each answer does:
 *   200: done, even when entries were rejected (they are in uplink's dead
 *        letters and reported to `onResults`; retrying would not change them).
 *   413, 400 too_many_entries: the request is split in halves and sent again.
 *   401: the token is dropped and the upload retried with a new one.
 *   429, 503 with Retry-After: no request before that time.
 *   5xx, 429, network errors, timeouts: rethrown, so the SDK retries the same
 *        transactions (after its `retryDelayMs`).
 *   other 4xx (400, 415…), and a single transaction too large to send: the
 *        request can never succeed. `onFatal` decides; by default the
 *        transactions stay queued, the error is logged loudly, and uploads
 *        back off exponentially (`backoff`) instead of hammering uplink.
 *
 * Types come from the SDK package the app uses: `@powersync/node` here,
 * `@powersync/web` (or `@powersync/react-native`) in other apps.
 */
import type {
  AbstractPowerSyncDatabase,
  CrudTransaction,
  PowerSyncBackendConnector,
  PowerSyncCredentials
} from '@powersync/node';

/** One entry of uplink's response that was not simply applied. */
export interface UplinkEntryResult {
  op_id?: number;
  table: string;
  id: string;
  status: 'duplicate' | 'conflict' | 'rejected';
  code?: string;
  message?: string;
  constraint?: string;
  column?: string;
}

export interface UplinkReport {
  applied: number;
  duplicates: number;
  conflicts: number;
  rejected: number;
  results: UplinkEntryResult[];
}

/** What to do with transactions uplink refused as a whole (see `onFatal`). */
export type FatalDecision = 'keep' | 'discard';

export interface UplinkConnectorOptions {
  /** uplink's base URL, e.g. "https://api.example.com". */
  url: string;
  /**
   * Headers that authenticate the app to uplink's token endpoint: typically
   * `{ Authorization: 'Bearer ' + <your auth provider's token> }`. Return
   * null while the user is signed out: fetchCredentials() then returns null
   * and uploads wait.
   */
  authHeaders?: () =>
    | Promise<Record<string, string> | null>
    | Record<string, string>
    | null;
  /** Query parameters for the token endpoint (development identity: `{ user_id }`). */
  tokenQuery?: Record<string, string>;
  /**
   * Entries per request (default 1000; keep it at or under uplink's
   * `write.max_entries_per_batch`). Whole transactions are packed until the
   * next one would pass it; a larger transaction goes alone.
   */
  maxEntriesPerRequest?: number;
  /** Abort a request after this long (default 30 000 ms); the SDK retries it. */
  timeoutMs?: number;
  /** Back-off after a request that can never succeed (default 5 s doubling to 5 min). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Called after each upload with the entries that were rejected, conflicted or duplicate. */
  onResults?: (report: UplinkReport) => void | Promise<void>;
  /**
   * Called when uplink refuses a request as a whole (400, 415, …), which
   * resending cannot fix, e.g. a proxy that rejects the body or an entry the
   * app's SDK serialises in a shape uplink does not read. Return 'discard' to
   * drop these transactions from the queue (they are lost), or 'keep'
   * (the default) to keep them and retry with back-off, e.g. after an app
   * update.
   */
  onFatal?: (error: UplinkFatalError, transactions: CrudTransaction[]) => FatalDecision | void | Promise<FatalDecision | void>;
  fetch?: typeof fetch;
}

/** An upload to retry later (database unavailable, rate limited, timeout…). */
export class UplinkRetryableError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'UplinkRetryableError';
  }
}

/** uplink refused the request as a whole; sending it again cannot succeed. */
export class UplinkFatalError extends Error {
  constructor(message: string, readonly status: number, readonly code: string | undefined) {
    super(message);
    this.name = 'UplinkFatalError';
  }
}

/** The user is signed out: there is no token to upload with. */
export class UplinkSignedOutError extends Error {
  constructor() {
    super('signed out: uploads wait until the user signs in');
    this.name = 'UplinkSignedOutError';
  }
}

interface TokenResponse {
  token: string;
  powersync_url: string;
  expires_at: number | string;
  user_id: string;
}

/** Renew a token this long before it expires, so a request never carries a stale one. */
const RENEW_BEFORE_MS = 30_000;

function toDate(expiresAt: number | string): Date {
  if (typeof expiresAt === 'number') {
    // Seconds since the epoch (milliseconds when implausibly large).
    return new Date(expiresAt < 1e12 ? expiresAt * 1000 : expiresAt);
  }
  return new Date(expiresAt);
}

/** Seconds or an HTTP date, as `Retry-After` allows; undefined when absent or unreadable. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** An answer meaning "this request is too large": split it. */
function tooLarge(status: number, code: string | undefined): boolean {
  return status === 413 || code === 'too_many_entries';
}

async function errorOf(response: Response): Promise<{ code?: string; text: string }> {
  const text = await response.text();
  try {
    return { code: JSON.parse(text)?.error?.code, text };
  } catch {
    return { text };
  }
}

export class UplinkConnector implements PowerSyncBackendConnector {
  private credentials: PowerSyncCredentials | null = null;
  private pendingCredentials: Promise<PowerSyncCredentials | null> | null = null;
  private readonly fetchImpl: typeof fetch;
  /** No request before this time (Retry-After, back-off). */
  private notBefore = 0;
  private fatalBackoffMs = 0;

  constructor(private readonly options: UplinkConnectorOptions) {
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private endpoint(path: string): string {
    return this.options.url.replace(/\/+$/, '') + path;
  }

  /** A fresh token from uplink (the SDK calls this on every sync connection). */
  async fetchCredentials(): Promise<PowerSyncCredentials | null> {
    // Concurrent callers (sync stream, uploads, attachments) share one request.
    this.pendingCredentials ??= this.requestCredentials().finally(() => {
      this.pendingCredentials = null;
    });
    return this.pendingCredentials;
  }

  private async requestCredentials(): Promise<PowerSyncCredentials | null> {
    const headers = this.options.authHeaders ? await this.options.authHeaders() : {};
    if (headers === null) {
      this.credentials = null;
      return null;
    }
    const query = new URLSearchParams(this.options.tokenQuery ?? {}).toString();
    const response = await this.request(this.endpoint('/api/auth/token') + (query ? `?${query}` : ''), { headers });
    if (!response.ok) {
      throw new UplinkRetryableError(
        `uplink token endpoint answered ${response.status}: ${await response.text()}`,
        response.status
      );
    }
    const body = (await response.json()) as TokenResponse;
    this.credentials = { endpoint: body.powersync_url, token: body.token, expiresAt: toDate(body.expires_at) };
    return this.credentials;
  }

  /**
   * The current token, fetched only when there is none or it is about to
   * expire. For the attachment adapter: `getToken: () => connector.getToken()`.
   */
  async getToken(): Promise<string> {
    const expiresAt = this.credentials?.expiresAt?.getTime() ?? 0;
    const credentials =
      this.credentials && expiresAt - Date.now() >= RENEW_BEFORE_MS ? this.credentials : await this.fetchCredentials();
    if (!credentials) {
      throw new UplinkSignedOutError();
    }
    return credentials.token;
  }

  /** fetch with the request timeout. */
  private async request(url: string, init: RequestInit): Promise<Response> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs ?? 30_000);
    try {
      return await this.fetchImpl(url, { ...init, signal: controller.signal });
    } catch (error) {
      const reason = controller.signal.aborted ? 'timed out' : String(error);
      throw new UplinkRetryableError(`request to ${url} failed: ${reason}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async uploadData(database: AbstractPowerSyncDatabase): Promise<void> {
    const wait = this.notBefore - Date.now();
    if (wait > 0) {
      // Throwing sends the SDK to its retry delay without a request.
      throw new UplinkRetryableError(`uplink asked to wait; next upload in ${Math.ceil(wait / 1000)} s`);
    }
    const transactions = await this.nextTransactions(database);
    if (transactions.length === 0) {
      return;
    }
    const clientId = await database.getClientId();
    await this.send(clientId, transactions);
    this.fatalBackoffMs = 0;
  }

  /** The oldest queued transactions, whole, up to `maxEntriesPerRequest` entries (at least one). */
  private async nextTransactions(database: AbstractPowerSyncDatabase): Promise<CrudTransaction[]> {
    const limit = this.options.maxEntriesPerRequest ?? 1000;
    const transactions: CrudTransaction[] = [];
    let entries = 0;
    for await (const transaction of database.getCrudTransactions()) {
      if (transactions.length > 0 && entries + transaction.crud.length > limit) {
        break; // Read again, first, by the next upload.
      }
      transactions.push(transaction);
      entries += transaction.crud.length;
      if (entries >= limit) {
        break;
      }
    }
    return transactions;
  }

  /** Posts `transactions` in order, halving the request while uplink says it is too large. */
  private async send(clientId: string, transactions: CrudTransaction[]): Promise<void> {
    const body = JSON.stringify({
      client_id: clientId,
      batch: transactions.flatMap((t) => t.crud.map((entry) => entry.toJSON()))
    });
    const response = await this.request(this.endpoint('/api/data'), {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${await this.getToken()}`,
        'PowerSync-Client-Id': clientId
      },
      body
    });
    if (response.status === 200) {
      const report = (await response.json()) as UplinkReport;
      // Completing the last transaction completes every earlier one too.
      await transactions[transactions.length - 1].complete();
      if (report.results.length > 0) {
        await this.options.onResults?.(report);
      }
      return;
    }
    const { code, text } = await errorOf(response);
    if (tooLarge(response.status, code) && transactions.length > 1) {
      const half = Math.ceil(transactions.length / 2);
      await this.send(clientId, transactions.slice(0, half));
      await this.send(clientId, transactions.slice(half));
      return;
    }
    if (response.status === 401) {
      this.credentials = null;
    }
    const waitMs = retryAfterMs(response.headers.get('Retry-After'));
    if (waitMs !== undefined) {
      this.notBefore = Date.now() + waitMs;
    }
    if (response.status === 401 || response.status === 408 || response.status === 429 || response.status >= 500) {
      // Throwing keeps the transactions in the queue; the SDK retries them.
      throw new UplinkRetryableError(`uplink answered ${response.status}: ${text}`, response.status);
    }
    await this.fatal(new UplinkFatalError(`uplink refused the upload with ${response.status}: ${text}`, response.status, code), transactions);
  }

  private async fatal(error: UplinkFatalError, transactions: CrudTransaction[]): Promise<void> {
    const decision = (await this.options.onFatal?.(error, transactions)) ?? 'keep';
    if (decision === 'discard') {
      await transactions[transactions.length - 1].complete();
      return;
    }
    const { initialMs = 5_000, maxMs = 300_000 } = this.options.backoff ?? {};
    this.fatalBackoffMs = Math.min(maxMs, this.fatalBackoffMs === 0 ? initialMs : this.fatalBackoffMs * 2);
    this.notBefore = Math.max(this.notBefore, Date.now() + this.fatalBackoffMs);
    console.error(
      `uplink: ${transactions.length} transaction(s) cannot be uploaded and stay queued; ` +
        `retrying in ${this.fatalBackoffMs / 1000} s. ${error.message}`
    );
    throw error;
  }
}
