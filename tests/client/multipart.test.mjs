// Multipart, resumable uploads through the TypeScript adapter
// (clients/typescript/attachments.ts) to a running uplink binary, on local
// storage and on an S3-compatible server that checks SigV4 signatures (the
// `s3-test-server` example). The network drops after a few parts; a fresh
// adapter (an app restart) resumes from the parts storage lists, sends only
// the missing ones, and the file arrives byte for byte, while uplink's peak
// memory (VmHWM of the process this test started) stays under 64 MB.
//
// Each storage runs with uplink on Postgres and on MySQL/MariaDB (the todo
// example's schema for each).
//
// The file is 24 MB by default; UPLINK_MULTIPART_TEST_MB=256 runs the full
// size. Needs UPLINK_BIN, DATABASE_URL, UPLINK_TEST_MYSQL_URL and
// UPLINK_S3_SERVER (the example's binary); scripts/test sets them.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

import { databases, freePort, importClient, root } from './support.mjs';

const SIZE_MB = Number(process.env.UPLINK_MULTIPART_TEST_MB || 24);
const SIZE = SIZE_MB * 1000 * 1000;
const MAX_RSS_MB = 64;
const PARTS_BEFORE_DROP = 2;
const ACCESS_KEY = 'UPLINKTESTACCESSKEY';
const SECRET_KEY = 'uplink-test-secret-access-key-0123456789';
const BUCKET = 'uplink-attachments';

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Peak resident memory of process `pid` in MB (VmHWM). */
function peakRssMb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1]);
  assert.ok(kb > 0, 'VmHWM in /proc/<pid>/status');
  return kb / 1024;
}

async function startS3() {
  const bin = process.env.UPLINK_S3_SERVER || path.join(root, 'target/debug/examples/s3-test-server');
  assert.ok(fs.existsSync(bin), `build the S3 test server first (cargo build --example s3-test-server): ${bin}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-s3-'));
  const child = spawn(bin, [dir, BUCKET, ACCESS_KEY, SECRET_KEY], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const endpoint = await new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`s3-test-server exited with ${code}`)));
    lines.on('line', (line) => {
      const match = /^listening (\S+)$/.exec(line);
      if (match) resolve(match[1]);
    });
  });
  return {
    endpoint,
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function tokenFor(baseUrl, userId) {
  const response = await fetch(`${baseUrl}/api/auth/token?user_id=${encodeURIComponent(userId)}`);
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

const isPartPut = (url, init) =>
  (init?.method ?? 'GET') === 'PUT' && (String(url).includes('/api/attachments/parts/') || String(url).includes('uploadId='));

for (const database of databases) for (const backend of ['local', 's3']) {
  describe(`multipart uploads through the TypeScript adapter (${backend} storage, ${database.name})`, () => {
    let uplink;
    let s3;
    let mod;

    before(async () => {
      mod = await importClient('attachments');
      const env = {
        UPLINK__AUTH__POWERSYNC_URL: `http://127.0.0.1:${await freePort()}`,
        UPLINK__ATTACHMENTS__MAX_SIZE: String(SIZE + 1),
      };
      if (backend === 's3') {
        s3 = await startS3();
        Object.assign(env, {
          UPLINK__ATTACHMENTS__STORAGE: 's3',
          UPLINK__ATTACHMENTS__S3__BUCKET: BUCKET,
          UPLINK__ATTACHMENTS__S3__REGION: 'us-east-1',
          UPLINK__ATTACHMENTS__S3__ENDPOINT: s3.endpoint,
          UPLINK__ATTACHMENTS__S3__FORCE_PATH_STYLE: 'true',
          UPLINK__ATTACHMENTS__S3__ACCESS_KEY_ID: ACCESS_KEY,
          UPLINK__ATTACHMENTS__S3__SECRET_ACCESS_KEY: SECRET_KEY,
        });
      }
      uplink = await database.start({
        schemaFile: database.todoSchema,
        configFile: path.join(root, 'examples/todo/uplink.yaml'),
        env,
      });
    });

    after(async () => {
      await uplink?.stop();
      s3?.stop();
      // The stored file is as large as the test's; leave no copy behind.
      if (uplink) fs.rmSync(uplink.dataDir, { recursive: true, force: true });
    });

    test(`a ${SIZE_MB} MB file survives a dropped network and a restart`, async () => {
      const token = await tokenFor(uplink.baseUrl, 'alice');
      const file = randomBytes(SIZE);
      const expected = sha256(file);
      const data = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength);
      const record = { id: `video-${backend}`, filename: 'video.mp4', mediaType: 'video/mp4' };

      // The first run: the network drops after a few parts.
      let sentBeforeDrop = 0;
      const flaky = new mod.UplinkStorageAdapter({
        baseUrl: uplink.baseUrl,
        getToken: () => token,
        multipartThreshold: 8 * 1000 * 1000,
        fetch: async (url, init) => {
          if (isPartPut(url, init)) {
            if (sentBeforeDrop >= PARTS_BEFORE_DROP) throw new TypeError('fetch failed: network is down');
            sentBeforeDrop++;
          }
          return fetch(url, init);
        },
      });
      await assert.rejects(flaky.uploadFile(data, record), /network is down/);

      const listed = await fetch(`${uplink.baseUrl}/api/attachments/${record.id}/multipart`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      assert.equal(listed.status, 200);
      const before = await listed.json();
      assert.equal(before.parts.length, PARTS_BEFORE_DROP, 'the parts sent before the drop are stored');
      assert.ok(before.partCount > PARTS_BEFORE_DROP);

      // The restarted app: a new adapter resumes from the listed parts.
      let resent = 0;
      const progress = [];
      const resumed = new mod.UplinkStorageAdapter({
        baseUrl: uplink.baseUrl,
        getToken: () => token,
        multipartThreshold: 8 * 1000 * 1000,
        onProgress: (p) => progress.push(p.uploaded),
        fetch: async (url, init) => {
          if (isPartPut(url, init)) resent++;
          return fetch(url, init);
        },
      });
      await resumed.uploadFile(data, record);
      assert.equal(resent, before.partCount - PARTS_BEFORE_DROP, 'only the missing parts are sent');
      assert.equal(progress[0], before.partSize * PARTS_BEFORE_DROP);
      assert.equal(progress.at(-1), SIZE);
      assert.deepEqual([...progress].sort((a, b) => a - b), progress, 'progress only grows');

      const download = await fetch(`${uplink.baseUrl}/api/attachments/${record.id}/download-url`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      assert.equal(download.status, 200);
      const { downloadUrl, size } = await download.json();
      assert.equal(size, SIZE);
      const stored = Buffer.from(await (await fetch(downloadUrl)).arrayBuffer());
      assert.equal(sha256(stored), expected, 'the stored file is byte-identical');

      const rss = peakRssMb(uplink.child.pid);
      console.log(
        `multipart ${backend} on ${database.name}: ${SIZE_MB} MB in ${before.partCount} parts of ${before.partSize} bytes, ` +
          `${PARTS_BEFORE_DROP} before the drop, ${resent} resent; sha256 ${expected} matches; ` +
          `uplink peak RSS ${rss.toFixed(1)} MB`,
      );
      assert.ok(rss < MAX_RSS_MB, `uplink's peak RSS ${rss.toFixed(1)} MB is under ${MAX_RSS_MB} MB`);
    });
  });
}
