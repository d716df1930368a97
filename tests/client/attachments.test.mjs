// The TypeScript attachment adapter (clients/typescript/attachments.ts)
// against a running uplink binary: directly through the three
// RemoteStorageAdapter methods, and driven by the SDK's own AttachmentQueue.
//
// Needs UPLINK_BIN (the uplink binary) and DATABASE_URL (a Postgres server
// where a fresh database may be created); scripts/test sets both.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

/** Type-checks and compiles clients/typescript (tsconfig.json) and loads the adapter. */
async function compileAdapter() {
  execFileSync(path.join(here, 'node_modules', '.bin', 'tsc'), ['-p', here], { stdio: 'inherit' });
  return import(pathToFileURL(path.join(here, 'dist', 'attachments.js')).href);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function databaseUrl(name) {
  const url = new URL(process.env.DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Starts `uplink serve` on a fresh database; resolves once /health/ready answers 200. */
async function startUplink() {
  const bin = process.env.UPLINK_BIN;
  assert.ok(bin, 'set UPLINK_BIN to the uplink binary');
  assert.ok(process.env.DATABASE_URL, 'set DATABASE_URL to a Postgres server');
  const dbName = `uplink_client_${randomUUID().replaceAll('-', '')}`;
  execFileSync('psql', [process.env.DATABASE_URL, '-q', '-c', `CREATE DATABASE "${dbName}"`]);
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-client-'));
  const child = spawn(bin, ['serve'], {
    cwd: root,
    env: {
      ...process.env,
      UPLINK_ENVIRONMENT: 'development',
      DATABASE_URL: databaseUrl(dbName),
      UPLINK__SERVER__HOST: '127.0.0.1',
      UPLINK__SERVER__PORT: String(port),
      UPLINK__SERVER__DATA_DIR: dataDir,
      UPLINK__DATABASE__MIGRATE_ON_START: 'true',
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const baseUrl = `http://127.0.0.1:${port}`;
  // Poll readiness; give up if the process dies.
  for (;;) {
    const code = await Promise.race([exited.then((c) => ({ exited: c })), new Promise((r) => setTimeout(r, 100))]);
    if (code && 'exited' in code) throw new Error(`uplink exited with ${code.exited} before it was ready`);
    try {
      const response = await fetch(`${baseUrl}/health/ready`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
  }
  return { baseUrl, child, dataDir };
}

async function tokenFor(baseUrl, userId) {
  const response = await fetch(`${baseUrl}/api/auth/token?user_id=${encodeURIComponent(userId)}`);
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()).token;
}

describe('clients/typescript/attachments.ts against uplink (local storage)', () => {
  let uplink;
  let mod;

  before(async () => {
    mod = await compileAdapter();
    uplink = await startUplink();
  });

  after(() => {
    uplink?.child.kill('SIGTERM');
  });

  function adapterFor(userId) {
    return new mod.UplinkStorageAdapter({
      baseUrl: uplink.baseUrl,
      getToken: () => tokenFor(uplink.baseUrl, userId),
    });
  }

  test('uploadFile, downloadFile and deleteFile round-trip the bytes', async () => {
    const adapter = adapterFor('alice');
    const id = randomUUID();
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) % 256);
    const record = { id, filename: `${id}.jpg`, mediaType: 'image/jpeg', state: 0 };

    await adapter.uploadFile(bytes.buffer, record);

    const stored = path.join(uplink.dataDir, 'attachments', 'attachments', 'alice', `${id}.jpg`);
    assert.deepEqual(new Uint8Array(fs.readFileSync(stored)), bytes, 'bytes in the store');
    const downloaded = new Uint8Array(await adapter.downloadFile(record));
    assert.equal(createHash('sha256').update(downloaded).digest('hex'), createHash('sha256').update(bytes).digest('hex'));

    await adapter.deleteFile(record);
    assert.equal(fs.existsSync(stored), false, 'object removed');
    await adapter.deleteFile(record); // idempotent
    await assert.rejects(adapter.downloadFile(record), (err) => {
      assert.equal(err.status, 404);
      assert.equal(err.code, 'not_found');
      return true;
    });
  });

  test("another user's attachment is refused and the error handler archives it", async () => {
    const id = randomUUID();
    const record = { id, filename: `${id}.png`, mediaType: 'image/png', state: 0 };
    await adapterFor('alice').uploadFile(new TextEncoder().encode('private').buffer, record);

    const bob = adapterFor('bob');
    let caught;
    await assert.rejects(bob.uploadFile(new TextEncoder().encode('takeover').buffer, record), (err) => {
      caught = err;
      return err.status === 403 && err.code === 'forbidden';
    });
    assert.equal(await mod.uplinkErrorHandler.onUploadError(record, caught), false, '403 is archived, not retried');
    await assert.rejects(bob.downloadFile(record), (err) => err.status === 403);
  });

  test('a download before the upload completed is a retryable 409 not_uploaded', async () => {
    const id = randomUUID();
    const token = await tokenFor(uplink.baseUrl, 'alice');
    const response = await fetch(`${uplink.baseUrl}/api/attachments/upload-url`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id, filename: 'later.png', content_type: 'image/png', size: 3 }),
    });
    assert.equal(response.status, 200);
    const record = { id, filename: `${id}.png`, state: 1 };
    let caught;
    await assert.rejects(adapterFor('alice').downloadFile(record), (err) => {
      caught = err;
      return err.status === 409 && err.code === 'not_uploaded';
    });
    assert.equal(await mod.uplinkErrorHandler.onDownloadError(record, caught), true, '409 is retried');
  });
});
