/**
 * A RemoteStorageAdapter for the PowerSync SDK's AttachmentQueue, backed by
 * uplink's attachment routes:
 *
 *   POST   /api/attachments/upload-url          → { id, key, uploadUrl, method, headers, expiresAt }
 *   POST   /api/attachments/{id}/complete        → { id, size, contentType }
 *   GET    /api/attachments/{id}/download-url    → { downloadUrl, expiresAt, contentType, size }
 *   DELETE /api/attachments/{id}                 → 204 (also when already gone)
 *
 * Files of `multipartThreshold` bytes or more go in parts instead
 * (`POST /api/attachments/multipart`, `…/{id}/multipart/parts`,
 * `GET …/{id}/multipart`, `…/{id}/multipart/complete`): a dropped
 * connection costs one part, and the next `uploadFile` for the same id
 * (after a restart too) resumes from the parts storage lists.
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
  /**
   * Files of at least this many bytes go in parts (multipart, resumable).
   * Default 32 MiB; `Infinity` sends every file in one request.
   */
  multipartThreshold?: number;
  /** Parts sent at once (default 4). */
  concurrency?: number;
  /** Declare the file's SHA-256 so uplink checks the joined file (default true). */
  checksum?: boolean;
  /** Called as parts are stored: bytes stored so far of `total`. */
  onProgress?: (progress: UploadProgress) => void;
}

export interface UploadProgress {
  id: string;
  uploaded: number;
  total: number;
}

/** A file read one part at a time, so a large one never needs to be in memory whole. */
export interface FileSource {
  size: number;
  read(start: number, end: number): Promise<Uint8Array<ArrayBuffer>>;
}

interface MultipartUpload {
  id: string;
  key: string;
  uploadId: string;
  size: number;
  partSize: number;
  partCount: number;
  parts: { partNumber: number; size: number; etag: string }[];
}

interface SignedPart {
  partNumber: number;
  size: number;
  url: string;
  method?: string;
  headers?: Record<string, string>;
}

const SIGN_BATCH = 100;

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
  private readonly options: UplinkStorageOptions;

  constructor(options: UplinkStorageOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.getToken = options.getToken;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.options = options;
  }

  async uploadFile(fileData: ArrayBuffer, attachment: AttachmentRecord): Promise<void> {
    if (fileData.byteLength > 0 && fileData.byteLength >= (this.options.multipartThreshold ?? 32 * 1024 * 1024)) {
      const bytes = new Uint8Array(fileData);
      const sha256 =
        this.options.checksum === false
          ? undefined
          : Array.from(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes)), (b) =>
              b.toString(16).padStart(2, '0'),
            ).join('');
      await this.uploadInParts(
        attachment.id,
        attachment.filename,
        attachment.mediaType || undefined,
        { size: bytes.byteLength, read: async (start, end) => bytes.subarray(start, end) },
        sha256,
      );
      return;
    }
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

  /**
   * Uploads `source` as attachment `id` in parts, resuming the upload in
   * progress for this id if storage already holds some of its parts (same
   * size; the declared SHA-256 makes uplink refuse a file joined from
   * another file's parts). Resolves with uplink's `complete` answer.
   */
  async uploadInParts(
    id: string,
    filename: string,
    contentType: string | undefined,
    source: FileSource,
    sha256?: string,
  ): Promise<unknown> {
    const path = `/api/attachments/${encodeURIComponent(id)}/multipart`;
    for (let attempt = 1; ; attempt++) {
      let upload = await this.api<MultipartUpload>('GET', path).catch((error) => {
        if (error instanceof UplinkAttachmentError && error.status === 404) return undefined;
        throw error;
      });
      if (upload && upload.size !== source.size) {
        await this.api('DELETE', `${path}?uploadId=${encodeURIComponent(upload.uploadId)}`);
        upload = undefined;
      }
      upload ??= await this.api<MultipartUpload>('POST', '/api/attachments/multipart', {
        id,
        filename,
        contentType,
        size: source.size,
        checksumSha256: sha256,
      });
      try {
        const etags = await this.sendParts(upload, source);
        return await this.api('POST', `${path}/complete`, {
          uploadId: upload.uploadId,
          parts: [...etags.entries()].sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag })),
        });
      } catch (error) {
        // Completed, aborted or replaced meanwhile (or a part storage no
        // longer matches): start over once.
        const closed =
          error instanceof UplinkAttachmentError && ['upload_closed', 'part_mismatch', 'not_found'].includes(error.code ?? '');
        if (!closed || attempt > 1) throw error;
        if (error.code === 'part_mismatch') {
          await this.api('DELETE', `${path}?uploadId=${encodeURIComponent(upload.uploadId)}`);
        }
      }
    }
  }

  /** Sends the parts storage does not hold yet; returns every part's ETag. */
  private async sendParts(upload: MultipartUpload, source: FileSource): Promise<Map<number, string>> {
    const expected = (n: number) => (n < upload.partCount ? upload.partSize : upload.size - upload.partSize * (upload.partCount - 1));
    const etags = new Map<number, string>();
    for (const part of upload.parts) {
      if (part.size === expected(part.partNumber)) etags.set(part.partNumber, part.etag);
    }
    let uploaded = [...etags.keys()].reduce((sum, n) => sum + expected(n), 0);
    const report = () => this.options.onProgress?.({ id: upload.id, uploaded, total: upload.size });
    report();
    const missing: number[] = [];
    for (let n = 1; n <= upload.partCount; n++) if (!etags.has(n)) missing.push(n);
    const path = `/api/attachments/${encodeURIComponent(upload.id)}/multipart/parts`;
    for (let i = 0; i < missing.length; i += SIGN_BATCH) {
      const signed = await this.api<{ parts: SignedPart[] }>('POST', path, {
        uploadId: upload.uploadId,
        partNumbers: missing.slice(i, i + SIGN_BATCH),
      });
      const queue = [...signed.parts];
      let failure: unknown;
      const worker = async () => {
        // One failure stops the others taking more parts: what is stored stays for the resume.
        for (let part = queue.shift(); part && failure === undefined; part = queue.shift()) {
          try {
            const start = (part.partNumber - 1) * upload.partSize;
            const body = await source.read(start, start + part.size);
            etags.set(part.partNumber, await this.putPart(upload.id, part, body));
            uploaded += part.size;
            report();
          } catch (error) {
            failure ??= error;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, this.options.concurrency ?? 4) }, worker));
      if (failure !== undefined) throw failure;
    }
    return etags;
  }

  private async putPart(id: string, part: SignedPart, body: Uint8Array<ArrayBuffer>): Promise<string> {
    // The signed Content-Length is the part's size; fetch sets it from the body.
    const headers = Object.fromEntries(
      Object.entries(part.headers ?? {}).filter(([name]) => name.toLowerCase() !== 'content-length'),
    );
    const put = await this.fetchImpl(part.url, { method: part.method ?? 'PUT', headers, body });
    if (!put.ok) {
      let code: string | undefined;
      try {
        code = JSON.parse(await put.text())?.error?.code;
      } catch {
        code = undefined;
      }
      throw new UplinkAttachmentError(
        `storage refused part ${part.partNumber} of ${id}: HTTP ${put.status}`,
        put.status,
        code ?? (put.status === 404 ? 'upload_closed' : undefined),
      );
    }
    const etag = put.headers.get('etag');
    if (!etag) {
      throw new UplinkAttachmentError(
        `storage answered part ${part.partNumber} of ${id} without an ETag (S3: expose ETag in the bucket's CORS rule)`,
        put.status,
        undefined,
      );
    }
    return etag;
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
