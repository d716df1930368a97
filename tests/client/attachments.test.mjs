// The TypeScript attachment adapter (clients/typescript/attachments.ts)
// against a running uplink binary (local storage) serving the todo example:
// through its three RemoteStorageAdapter methods, and driven by the SDK's own
// AttachmentQueue on two devices of the same user, with the todo naming its
// photo (todos.photo_id) uploaded through the connector. Every scenario runs
// on Postgres (examples/todo/schema.sql) and on MySQL/MariaDB
// (examples/todo/schema.mysql.sql), with the same uplink.yaml.
//
// Needs UPLINK_BIN (the uplink binary), DATABASE_URL (a Postgres server where
// a fresh database may be created) and UPLINK_TEST_MYSQL_URL (a MySQL or
// MariaDB server, likewise); scripts/test sets them.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  AttachmentQueue,
  AttachmentState,
  AttachmentTable,
  NodeFileSystemAdapter,
  PowerSyncDatabase,
  Schema,
  Table,
  column,
} from '@powersync/node';

import { databases, eventually, freePort, importClient, root } from './support.mjs';

const sha256 = (bytes) => createHash('sha256').update(new Uint8Array(bytes)).digest('hex');

async function tokenFor(baseUrl, userId) {
  const response = await fetch(`${baseUrl}/api/auth/token?user_id=${encodeURIComponent(userId)}`);
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()).token;
}

for (const database of databases) describe(`clients/typescript/attachments.ts against uplink on ${database.name}`, () => {
  let uplink;
  let mod;
  let UplinkConnector;
  // What one query selects from the app's database; uplink's attachment records.
  const query = (sql) => database.query(uplink, sql);
  const records = () => database.own(uplink, 'attachments');

  before(async () => {
    mod = await importClient('attachments');
    ({ UplinkConnector } = await importClient('connector'));
    uplink = await database.start({
      schemaFile: database.todoSchema,
      configFile: path.join(root, 'examples/todo/uplink.yaml'),
      env: { UPLINK__AUTH__POWERSYNC_URL: `http://127.0.0.1:${await freePort()}` },
    });
  });

  after(async () => {
    await uplink?.stop();
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
    const record = { id, filename: `${id}.jpg`, mediaType: 'image/jpeg', state: AttachmentState.QUEUED_UPLOAD };

    await adapter.uploadFile(bytes.buffer, record);

    const stored = path.join(uplink.dataDir, 'attachments', 'attachments', 'alice', `${id}.jpg`);
    assert.equal(sha256(fs.readFileSync(stored)), sha256(bytes), 'bytes in the store');
    assert.equal(query(`SELECT concat(state, ' ', size) FROM ${records()} WHERE id = '${id}'`), 'uploaded 100000');
    const downloaded = await adapter.downloadFile(record);
    assert.equal(sha256(downloaded), sha256(bytes));

    await adapter.deleteFile(record);
    assert.equal(fs.existsSync(stored), false, 'object removed');
    await adapter.deleteFile(record); // idempotent
    await assert.rejects(adapter.downloadFile(record), (err) => {
      assert.equal(err.status, 404);
      assert.equal(err.code, 'not_found');
      return true;
    });
  });

  test('without a mediaType the content type comes from the extension', async () => {
    const id = randomUUID();
    const record = { id, filename: `${id}.pdf`, state: AttachmentState.QUEUED_UPLOAD };
    await adapterFor('alice').uploadFile(new TextEncoder().encode('%PDF-1.7').buffer, record);
    assert.equal(query(`SELECT content_type FROM ${records()} WHERE id = '${id}'`), 'application/pdf');
  });

  test("another user's upload under the same id is their own; the owner's file is untouched", async () => {
    const id = randomUUID();
    const record = { id, filename: `${id}.png`, mediaType: 'image/png', state: AttachmentState.QUEUED_UPLOAD };
    await adapterFor('alice').uploadFile(new TextEncoder().encode('private').buffer, record);

    // Ids are scoped per owner: Bob's upload makes Bob's attachment.
    const bob = adapterFor('bob');
    await bob.uploadFile(new TextEncoder().encode('takeover').buffer, record);
    assert.equal(new TextDecoder().decode(await bob.downloadFile(record)), 'takeover');
    const stored = path.join(uplink.dataDir, 'attachments', 'attachments', 'alice', `${id}.png`);
    assert.equal(fs.readFileSync(stored, 'utf8'), 'private');
    assert.equal(new TextDecoder().decode(await adapterFor('alice').downloadFile(record)), 'private');

    // Carol (read_policy: owner) may read neither: 403, archived.
    let caught;
    await assert.rejects(adapterFor('carol').downloadFile(record), (err) => {
      caught = err;
      return err.status === 403 && err.code === 'forbidden';
    });
    assert.equal(await mod.uplinkErrorHandler.onDownloadError(record, caught), false, '403 is archived, not retried');
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
    const record = { id, filename: `${id}.png`, state: AttachmentState.QUEUED_DOWNLOAD };
    let caught;
    await assert.rejects(adapterFor('alice').downloadFile(record), (err) => {
      caught = err;
      return err.status === 409 && err.code === 'not_uploaded';
    });
    assert.equal(await mod.uplinkErrorHandler.onDownloadError(record, caught), true, '409 is retried');
  });

  test("the SDK's AttachmentQueue uploads on one device and downloads on another; the todo names the photo", async () => {
    const schema = new Schema({
      lists: new Table({ name: column.text, owner_id: column.text }),
      todos: new Table({ list_id: column.text, description: column.text, created_by: column.text, photo_id: column.text }),
      attachments: new AttachmentTable(),
    });
    const devices = [];
    const logger = { log() {} };
    let tokenRequests = 0;
    const countingFetch = (url, init) => {
      if (new URL(String(url)).pathname === '/api/auth/token') tokenRequests++;
      return fetch(url, init);
    };

    async function device(name) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `uplink-queue-${name}-`));
      const db = new PowerSyncDatabase({ schema, database: { dbFilename: 'app.db', dbLocation: dir }, logger });
      await db.init();
      // One connector per device: it uploads the rows and lends its cached
      // token to the attachment adapter, as the adapter's docs show. (Not
      // connected: no PowerSync Service runs here; uploads are driven below.)
      const connector = new UplinkConnector({ url: uplink.baseUrl, tokenQuery: { user_id: 'alice' }, fetch: countingFetch });
      const queue = new AttachmentQueue({
        db,
        localStorage: new NodeFileSystemAdapter(path.join(dir, 'files')),
        remoteStorage: new mod.UplinkStorageAdapter({ baseUrl: uplink.baseUrl, getToken: () => connector.getToken(), fetch: countingFetch }),
        errorHandler: mod.uplinkErrorHandler,
        syncIntervalMs: 200,
        // The app's data names its attachments: here todos.photo_id.
        watchAttachments: (onUpdate, signal) => {
          db.watch(
            'SELECT photo_id FROM todos WHERE photo_id IS NOT NULL',
            [],
            { onResult: (r) => onUpdate((r.rows?._array ?? []).map((row) => ({ id: row.photo_id, fileExtension: 'png' }))) },
            { signal },
          );
        },
      });
      await queue.startSync();
      devices.push({ db, queue });
      return { db, queue, connector };
    }

    const stateOf = async (db, id) => (await db.getOptional('SELECT state FROM attachments WHERE id = ?', [id]))?.state;

    try {
      const phone = await device('phone');
      const listId = randomUUID();
      const todoId = randomUUID();
      await phone.db.execute('INSERT INTO lists (id, name) VALUES (?, ?)', [listId, 'Holiday']);
      const bytes = new Uint8Array(50_000).map((_, i) => (i * 13) % 256);
      const saved = await phone.queue.saveFile({
        data: bytes.buffer,
        fileExtension: 'png',
        mediaType: 'image/png',
        updateHook: async (tx, attachment) => {
          await tx.execute('INSERT INTO todos (id, list_id, description, photo_id) VALUES (?, ?, ?, ?)', [
            todoId,
            listId,
            'photo',
            attachment.id,
          ]);
        },
      });
      await eventually(async () => (await stateOf(phone.db, saved.id)) === AttachmentState.SYNCED);
      assert.equal(query(`SELECT concat(state, ' ', size) FROM ${records()} WHERE id = '${saved.id}'`), 'uploaded 50000');
      // The todo reached the database naming the uploaded attachment, owned by alice.
      await phone.connector.uploadData(phone.db);
      assert.equal((await phone.db.getUploadQueueStats()).count, 0, 'the list and the todo went in one request');
      assert.equal(query(`SELECT concat(created_by, ' ', photo_id) FROM todos WHERE id = '${todoId}'`), `alice ${saved.id}`);
      assert.equal(query(`SELECT concat(owner_id, ' ', state) FROM ${records()} WHERE id = '${saved.id}'`), 'alice uploaded');
      assert.equal(tokenRequests, 1, 'rows and files of one device share one token');

      // A second device learns of the attachment through the synced row
      // (written here, since no PowerSync Service runs in this test).
      const laptop = await device('laptop');
      await laptop.db.execute('INSERT INTO todos (id, list_id, description, photo_id) VALUES (?, ?, ?, ?)', [todoId, listId, 'photo', saved.id]);
      await eventually(async () => (await stateOf(laptop.db, saved.id)) === AttachmentState.SYNCED);
      const row = await laptop.db.get('SELECT local_uri FROM attachments WHERE id = ?', [saved.id]);
      assert.equal(sha256(fs.readFileSync(row.local_uri)), sha256(bytes), 'downloaded bytes');

      // Deleting through the queue deletes on uplink.
      await phone.queue.deleteFile({
        id: saved.id,
        updateHook: async (tx) => {
          await tx.execute('DELETE FROM todos WHERE photo_id = ?', [saved.id]);
        },
      });
      await eventually(() => query(`SELECT state FROM ${records()} WHERE id = '${saved.id}'`) === 'deleted');
    } finally {
      for (const { db, queue } of devices) {
        await queue.stopSync();
        await db.close();
      }
    }
  });
});
