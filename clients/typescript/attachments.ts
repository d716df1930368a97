/**
 * A RemoteStorageAdapter for the PowerSync SDK's AttachmentQueue, backed by
 * uplink's attachment routes:
 *
 *   POST   /api/attachments/upload-url          → { id, key, uploadUrl, method, headers, expiresAt }
 *   POST   /api/attachments/{id}/complete        → { id, size, contentType }
 *   GET    /api/attachments/{id}/download-url    → { downloadUrl, expiresAt, contentType, size }
 *   DELETE /api/attachments/{id}                 → 204 (also when already gone)
 *
 * The bytes go straight to storage (S3 or uplink's local store) with the
 * signed headers uplink returns; uplink only signs and records.
 *
 * ```ts
 * const remoteStorage = new UplinkStorageAdapter({
 *   baseUrl: 'https://api.example.com',
 *   // The connector's cached token: no token request per file.
 *   getToken: () => connector.getToken(),
 * });
 * const queue = new AttachmentQueue({ db, localStorage, remoteStorage, watchAttachments, errorHandler: uplinkErrorHandler });
 * ```
 */
// From the SDK package the app uses: `@powersync/node`, `@powersync/web`…
import type { AttachmentErrorHandler, AttachmentRecord, RemoteStorageAdapter } from '@powersync/node';

export interface UplinkStorageOptions {
  /** uplink's base URL, e.g. `https://api.example.com`. */
  baseUrl: string;
  /**
   * A bearer token uplink accepts. Use the connector's `getToken()`, which
   * caches it; a function that fetches a token each time costs a token
   * request per file.
   */
  getToken: () => string | Promise<string>;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
}

/** An error from uplink or from storage, with the HTTP status and uplink's error code. */
export class UplinkAttachmentError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'UplinkAttachmentError';
  }
}

interface UploadUrlResponse {
  id: string;
  key: string;
  uploadUrl: string;
  method?: string;
  headers?: Record<string, string>;
  expiresAt: string;
}

interface DownloadUrlResponse {
  downloadUrl: string;
  expiresAt: string;
  contentType: string;
  size: number | null;
}

export class UplinkStorageAdapter implements RemoteStorageAdapter {
  private readonly baseUrl: string;
  private readonly getToken: () => string | Promise<string>;
  private readonly fetchImpl: typeof fetch;

  constructor(options: UplinkStorageOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.getToken = options.getToken;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async uploadFile(fileData: ArrayBuffer, attachment: AttachmentRecord): Promise<void> {
    const target = await this.api<UploadUrlResponse>('POST', '/api/attachments/upload-url', {
      id: attachment.id,
      filename: attachment.filename,
      // Without a media type uplink derives one from the filename's extension.
      contentType: attachment.mediaType || undefined,
      size: fileData.byteLength,
    });
    // Send the signed headers exactly; fetch sets Content-Length from the body itself.
    const headers = Object.fromEntries(
      Object.entries(target.headers ?? {}).filter(([name]) => name.toLowerCase() !== 'content-length'),
    );
    const put = await this.fetchImpl(target.uploadUrl, {
      method: target.method ?? 'PUT',
      headers,
      body: new Uint8Array(fileData),
    });
    if (!put.ok) {
      throw new UplinkAttachmentError(
        `storage refused the upload of ${attachment.id}: HTTP ${put.status}`,
        put.status,
        undefined,
      );
    }
    await this.api('POST', `/api/attachments/${encodeURIComponent(attachment.id)}/complete`);
  }

  async downloadFile(attachment: AttachmentRecord): Promise<ArrayBuffer> {
    const target = await this.api<DownloadUrlResponse>(
      'GET',
      `/api/attachments/${encodeURIComponent(attachment.id)}/download-url`,
    );
    const response = await this.fetchImpl(target.downloadUrl);
    if (!response.ok) {
      throw new UplinkAttachmentError(
        `storage refused the download of ${attachment.id}: HTTP ${response.status}`,
        response.status,
        undefined,
      );
    }
    return response.arrayBuffer();
  }

  async deleteFile(attachment: AttachmentRecord): Promise<void> {
    await this.api('DELETE', `/api/attachments/${encodeURIComponent(attachment.id)}`);
  }

  private async api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const token = await this.getToken();
    const response = await this.fetchImpl(`${this.baseUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) {
      return undefined as T;
    }
    const text = await response.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const code: string | undefined = json?.error?.code;
      const message: string = json?.error?.message ?? `HTTP ${response.status}`;
      throw new UplinkAttachmentError(`${method} ${path}: ${message}`, response.status, code);
    }
    return json as T;
  }
}

/**
 * An AttachmentErrorHandler for uplink's answers: give up (archive) on
 * `404 not_found`, `403 forbidden` and `409 ambiguous_attachment`, which
 * retrying cannot fix; retry
 * everything else, including `409 not_uploaded` (the owner's device has not
 * uploaded the file yet) and 503.
 */
export const uplinkErrorHandler: AttachmentErrorHandler = {
  async onDownloadError(_attachment, error) {
    return retryable(error);
  },
  async onUploadError(_attachment, error) {
    return retryable(error);
  },
  async onDeleteError(_attachment, error) {
    return retryable(error);
  },
};

function retryable(error: unknown): boolean {
  if (error instanceof UplinkAttachmentError) {
    // Several users have an attachment with this id and the read policy
    // cannot tell them apart: retrying changes nothing.
    if (error.code === 'ambiguous_attachment') return false;
    return !(error.status === 404 || error.status === 403 || error.status === 413 || error.status === 415);
  }
  return true;
}
