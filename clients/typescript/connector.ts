/**
 * A PowerSync backend connector for uplink: copy this file into your app.
 *
 * - fetchCredentials() gets a PowerSync token from uplink's token endpoint.
 * - uploadData() sends the next client transaction (or a batch of up to
 *   `batchSize` entries) to POST /api/data with the database's client id, so
 *   uplink applies every entry exactly once.
 *   200: done, even when entries were rejected (they are in uplink's dead
 *   letters and reported to `onResults`; retrying would not change them).
 *   401: the token is dropped and the upload retried with a new one.
 *   5xx, 429 and network errors: rethrown, so the SDK retries the same batch.
 */
import type {
  AbstractPowerSyncDatabase,
  PowerSyncBackendConnector,
  PowerSyncCredentials
} from '@powersync/common';

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

export interface UplinkConnectorOptions {
  /** uplink's base URL, e.g. "https://api.example.com". */
  url: string;
  /**
   * Headers that authenticate the app to uplink's token endpoint: typically
   * `{ Authorization: 'Bearer ' + <your auth provider's token> }`.
   */
  authHeaders?: () => Promise<Record<string, string>> | Record<string, string>;
  /** Query parameters for the token endpoint (development identity: `{ user_id }`). */
  tokenQuery?: Record<string, string>;
  /** 'transaction' sends getNextCrudTransaction(); 'batch' sends getCrudBatch(batchSize). */
  drain?: 'transaction' | 'batch';
  batchSize?: number;
  /** Called after each upload with the entries that were rejected, conflicted or duplicate. */
  onResults?: (report: UplinkReport) => void | Promise<void>;
  fetch?: typeof fetch;
}

/** An upload uplink asked the client to retry (database unavailable, rate limited…). */
export class UplinkRetryableError extends Error {}

interface TokenResponse {
  token: string;
  powersync_url: string;
  expires_at: number | string;
  user_id: string;
}

function toDate(expiresAt: number | string): Date {
  if (typeof expiresAt === 'number') {
    // Seconds since the epoch (milliseconds when implausibly large).
    return new Date(expiresAt < 1e12 ? expiresAt * 1000 : expiresAt);
  }
  return new Date(expiresAt);
}

export class UplinkConnector implements PowerSyncBackendConnector {
  private credentials: PowerSyncCredentials | null = null;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: UplinkConnectorOptions) {
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private endpoint(path: string): string {
    return this.options.url.replace(/\/+$/, '') + path;
  }

  async fetchCredentials(): Promise<PowerSyncCredentials> {
    const query = new URLSearchParams(this.options.tokenQuery ?? {}).toString();
    const headers = (await this.options.authHeaders?.()) ?? {};
    const response = await this.fetchImpl(this.endpoint('/api/auth/token') + (query ? `?${query}` : ''), {
      headers
    });
    if (!response.ok) {
      throw new Error(`uplink token endpoint answered ${response.status}: ${await response.text()}`);
    }
    const body = (await response.json()) as TokenResponse;
    this.credentials = { endpoint: body.powersync_url, token: body.token, expiresAt: toDate(body.expires_at) };
    return this.credentials;
  }

  private async uploadToken(): Promise<string> {
    const expiresAt = this.credentials?.expiresAt?.getTime() ?? 0;
    // Renew a little before expiry so a request never carries a stale token.
    if (!this.credentials || expiresAt - Date.now() < 30_000) {
      await this.fetchCredentials();
    }
    return this.credentials!.token;
  }

  async uploadData(database: AbstractPowerSyncDatabase): Promise<void> {
    const unit =
      this.options.drain === 'batch'
        ? await database.getCrudBatch(this.options.batchSize ?? 100)
        : await database.getNextCrudTransaction();
    if (!unit) {
      return;
    }
    const clientId = await database.getClientId();
    const body = JSON.stringify({ client_id: clientId, batch: unit.crud.map((entry) => entry.toJSON()) });
    const response = await this.fetchImpl(this.endpoint('/api/data'), {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${await this.uploadToken()}`,
        'PowerSync-Client-Id': clientId
      },
      body
    });
    if (response.status === 200) {
      const report = (await response.json()) as UplinkReport;
      await unit.complete();
      if (report.results.length > 0) {
        await this.options.onResults?.(report);
      }
      return;
    }
    if (response.status === 401) {
      this.credentials = null;
    }
    // Throwing keeps the batch in the queue; the SDK retries it.
    throw new UplinkRetryableError(`uplink answered ${response.status}: ${await response.text()}`);
  }
}
