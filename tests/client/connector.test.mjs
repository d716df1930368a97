// clients/typescript/connector.ts with the real PowerSync SDK (@powersync/node)
// against running uplink binaries: how it packs an offline backlog into few
// requests, splits a request uplink finds too large, backs off from a request
// that can never succeed, honours Retry-After, times out, and hands out one
// cached token. Requests are counted by a fetch wrapper around the real fetch.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { PowerSyncDatabase, Schema, Table, column } from '@powersync/node';

import { eventually, freePort, importClient, psql, root, startUplink } from './support.mjs';

const AppSchema = new Schema({
  lists: new Table({ created_at: column.text, name: column.text, owner_id: column.text }),
});

// No PowerSync Service runs here: keep the SDK quiet about the refused sync stream.
const logger = { log() {} };

let mod;
const databases = [];

before(async () => {
  mod = await importClient('connector');
});

after(async () => {
  for (const db of databases) await db.close();
});

async function openDatabase() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-connector-'));
  const db = new PowerSyncDatabase({ schema: AppSchema, database: { dbFilename: 'client.db', dbLocation: dir }, logger });
  await db.init();
  databases.push(db);
  return db;
}

/** Starts uplink with the todo example and `env`; the sync URL points at a closed port. */
async function exampleUplink(env = {}) {
  return startUplink({
    schemaFile: path.join(root, 'examples/todo/schema.sql'),
    configFile: path.join(root, 'examples/todo/uplink.yaml'),
    env: { UPLINK__AUTH__POWERSYNC_URL: `http://127.0.0.1:${await freePort()}`, ...env },
  });
}

/** The real fetch, recording every request to uplink: path, status and (for uploads) the body. */
function recordingFetch() {
  const requests = [];
  const wrapped = async (url, init) => {
    const response = await fetch(url, init);
    const { pathname } = new URL(String(url));
    requests.push({ path: pathname, status: response.status, body: init?.body ? JSON.parse(init.body) : undefined });
    return response;
  };
  return { fetch: wrapped, requests, uploads: () => requests.filter((r) => r.path === '/api/data') };
}

/** Writes `count` lists, each in its own transaction; returns their ids. */
async function writeLists(db, count, name = (i) => `list ${i}`) {
  const ids = [];
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    ids.push(id);
    await db.writeTransaction((tx) => tx.execute('INSERT INTO lists (id, name) VALUES (?, ?)', [id, name(i)]));
  }
  return ids;
}

const queueCount = async (db) => (await db.getUploadQueueStats()).count;
const serverCount = (uplink) => Number(psql(uplink.dbUrl, 'SELECT count(*) FROM lists').trim());

describe('an offline backlog', () => {
  let uplink;
  before(async () => {
    uplink = await exampleUplink();
  });
  after(async () => uplink?.stop());

  test('of 2 000 small transactions uploads in far fewer requests, in order, each transaction once', async () => {
    const db = await openDatabase();
    const ids = await writeLists(db, 2000);
    assert.equal(await queueCount(db), 2000, 'written offline');
    const recorder = recordingFetch();
    const connector = new mod.UplinkConnector({ url: uplink.baseUrl, tokenQuery: { user_id: 'backlog' }, fetch: recorder.fetch });

    await db.connect(connector, { crudUploadThrottleMs: 10, retryDelayMs: 100 });
    await eventually(async () => (await queueCount(db)) === 0);

    const uploads = recorder.uploads();
    assert.ok(uploads.length <= 2000 / 10, `${uploads.length} requests for 2 000 transactions`);
    assert.ok(uploads.every((u) => u.status === 200), 'every request was accepted');
    const clientId = await db.getClientId();
    assert.ok(uploads.every((u) => u.body.client_id === clientId), 'every request names the client');
    const entries = uploads.flatMap((u) => u.body.batch);
    assert.equal(entries.length, 2000, 'each transaction sent once');
    for (let i = 1; i < entries.length; i++) {
      assert.ok(entries[i].op_id > entries[i - 1].op_id, 'entries go in queue order');
      assert.ok(entries[i].tx_id > entries[i - 1].tx_id, 'one entry per transaction, in order');
    }
    assert.deepEqual(entries.map((e) => e.id), ids);
    assert.equal(serverCount(uplink), 2000);
    assert.equal(psql(uplink.dbUrl, "SELECT count(*) FROM lists WHERE owner_id = 'backlog'").trim(), '2000');
    await db.disconnect();
  });
});

describe('a request uplink finds too large', () => {
  let uplink;
  before(async () => {
    // 10 entries per request; a body of 8 KiB. 60 lists of ~450 bytes are
    // over both, 15 are over the entry limit only.
    uplink = await exampleUplink({ UPLINK__WRITE__MAX_ENTRIES_PER_BATCH: '10', UPLINK__SERVER__MAX_BODY_BYTES: '8192' });
  });
  after(async () => uplink?.stop());

  test('is split (413 and 400 too_many_entries) until every transaction is in, in order', async () => {
    const db = await openDatabase();
    const ids = await writeLists(db, 60, (i) => `${i} ${'x'.repeat(300)}`);
    const recorder = recordingFetch();
    const connector = new mod.UplinkConnector({
      url: uplink.baseUrl,
      tokenQuery: { user_id: 'splitter' },
      fetch: recorder.fetch,
      maxEntriesPerRequest: 100,
    });

    await db.connect(connector, { crudUploadThrottleMs: 10, retryDelayMs: 100 });
    await eventually(async () => (await queueCount(db)) === 0);
    await db.disconnect();

    const uploads = recorder.uploads();
    const statuses = new Set(uploads.map((u) => u.status));
    assert.ok(statuses.has(413), `a body over the limit was answered 413: ${[...statuses]}`);
    assert.ok(statuses.has(400), `a batch over the entry limit was answered 400: ${[...statuses]}`);
    const accepted = uploads.filter((u) => u.status === 200);
    assert.ok(accepted.every((u) => u.body.batch.length <= 10), 'only requests within the limits were accepted');
    const entries = accepted.flatMap((u) => u.body.batch);
    assert.deepEqual(entries.map((e) => e.id), ids, 'every transaction once, in order');
    assert.equal(serverCount(uplink), 60);
  });
});

describe('a request that can never succeed', () => {
  let uplink;
  before(async () => {
    // Every body the SDK sends nests 4 levels: uplink answers 400 json_too_deep.
    uplink = await exampleUplink({ UPLINK__LIMITS__MAX_JSON_DEPTH: '3' });
  });
  after(async () => uplink?.stop());

  test('calls onFatal, keeps the queue and backs off instead of looping', async () => {
    const db = await openDatabase();
    await writeLists(db, 3);
    const recorder = recordingFetch();
    const fatal = [];
    const errors = [];
    const connector = new mod.UplinkConnector({
      url: uplink.baseUrl,
      tokenQuery: { user_id: 'fatal' },
      fetch: recorder.fetch,
      backoff: { initialMs: 600_000 },
      onFatal: (error, transactions) => {
        fatal.push({ error, count: transactions.length });
      },
    });
    const logged = console.error;
    console.error = (...args) => errors.push(args.join(' '));
    try {
      // Called back to back, as a retrying upload loop would.
      for (let i = 0; i < 20; i++) {
        await assert.rejects(connector.uploadData(db));
      }
      // The SDK's own loop, prompted by new writes, retries every 10 ms.
      await db.connect(connector, { crudUploadThrottleMs: 10, retryDelayMs: 10 });
      await writeLists(db, 5);
      await eventually(async () => (await queueCount(db)) === 8);
      await db.disconnect();
    } finally {
      console.error = logged;
    }

    assert.equal(recorder.uploads().length, 1, 'one request, then back-off');
    assert.equal(recorder.uploads()[0].status, 400);
    assert.equal(fatal.length, 1);
    assert.ok(fatal[0].error instanceof mod.UplinkFatalError);
    assert.equal(fatal[0].error.status, 400);
    assert.equal(fatal[0].error.code, 'json_too_deep');
    assert.equal(fatal[0].count, 3, 'onFatal gets the refused transactions');
    assert.ok(errors.some((e) => /cannot be uploaded and stay queued/.test(e)), 'a loud error');
    assert.equal(await queueCount(db), 8, 'nothing left the queue');
    assert.equal(serverCount(uplink), 0);
  });

  test("onFatal returning 'discard' drops the refused transactions", async () => {
    const db = await openDatabase();
    await writeLists(db, 2);
    const connector = new mod.UplinkConnector({
      url: uplink.baseUrl,
      tokenQuery: { user_id: 'fatal' },
      onFatal: () => 'discard',
    });
    await connector.uploadData(db);
    assert.equal(await queueCount(db), 0);
    assert.equal(serverCount(uplink), 0);
  });
});

describe('Retry-After', () => {
  let uplink;
  before(async () => {
    // One upload, then the next one in 100 s.
    uplink = await exampleUplink({
      UPLINK__LIMITS__UPLOAD_PER_USER__PER_SECOND: '0.01',
      UPLINK__LIMITS__UPLOAD_PER_USER__BURST: '1',
    });
  });
  after(async () => uplink?.stop());

  test('no request goes out before the time uplink gave', async () => {
    const db = await openDatabase();
    const recorder = recordingFetch();
    const connector = new mod.UplinkConnector({ url: uplink.baseUrl, tokenQuery: { user_id: 'limited' }, fetch: recorder.fetch });
    await writeLists(db, 1);
    await connector.uploadData(db);
    await writeLists(db, 1);
    await assert.rejects(connector.uploadData(db), (error) => error.status === 429);
    for (let i = 0; i < 10; i++) {
      await assert.rejects(connector.uploadData(db), mod.UplinkRetryableError);
    }
    assert.deepEqual(recorder.uploads().map((u) => u.status), [200, 429]);
    assert.equal(await queueCount(db), 1);
    assert.equal(serverCount(uplink), 1);
  });
});

describe('credentials', () => {
  let uplink;
  before(async () => {
    uplink = await exampleUplink();
  });
  after(async () => uplink?.stop());

  test('fetchCredentials() is null while signed out; uploads wait', async () => {
    let signedIn = false;
    const recorder = recordingFetch();
    const connector = new mod.UplinkConnector({
      url: uplink.baseUrl,
      tokenQuery: { user_id: 'signed-out' },
      authHeaders: () => (signedIn ? {} : null),
      fetch: recorder.fetch,
    });
    assert.equal(await connector.fetchCredentials(), null);
    const db = await openDatabase();
    await writeLists(db, 1);
    await assert.rejects(connector.uploadData(db), mod.UplinkSignedOutError);
    assert.deepEqual(recorder.requests, [], 'no request while signed out');
    assert.equal(await queueCount(db), 1);

    signedIn = true;
    const credentials = await connector.fetchCredentials();
    assert.ok(credentials.token);
    await connector.uploadData(db);
    assert.equal(await queueCount(db), 0);
    assert.equal(serverCount(uplink), 1);
  });

  test('getToken() reuses one token until it nears expiry', async () => {
    const recorder = recordingFetch();
    const connector = new mod.UplinkConnector({ url: uplink.baseUrl, tokenQuery: { user_id: 'cached' }, fetch: recorder.fetch });
    const tokens = await Promise.all([connector.getToken(), connector.getToken(), connector.getToken()]);
    tokens.push(await connector.getToken());
    assert.equal(new Set(tokens).size, 1);
    assert.equal(recorder.requests.filter((r) => r.path === '/api/auth/token').length, 1);
  });

  test('an upload that gets no answer times out and stays queued', async () => {
    // Hands out uplink's tokens, never answers an upload.
    const pending = [];
    const proxy = http.createServer(async (req, res) => {
      if (!req.url.startsWith('/api/auth/token')) {
        pending.push(res);
        return;
      }
      const answer = await fetch(uplink.baseUrl + req.url);
      res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(await answer.text());
    });
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const connector = new mod.UplinkConnector({
        url: `http://127.0.0.1:${proxy.address().port}`,
        tokenQuery: { user_id: 'timeout' },
        timeoutMs: 500,
      });
      const db = await openDatabase();
      await writeLists(db, 1);
      await assert.rejects(connector.uploadData(db), (error) => error instanceof mod.UplinkRetryableError && /timed out/.test(error.message));
      assert.equal(pending.length, 1, 'the upload reached the server');
      assert.equal(await queueCount(db), 1);
    } finally {
      pending.forEach((res) => res.destroy());
      proxy.close();
    }
  });
});
