// End to end with the real PowerSync SDK (@powersync/node): a client database
// with the todo schema, connected through clients/typescript/connector.ts to
// a running uplink, writes in several transactions; everything arrives in
// Postgres with the right types and values, and the upload queue empties.
// The PowerSync Service URL points at a closed port: the SDK's upload loop
// runs regardless.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PowerSyncDatabase, Schema, Table, column } from '@powersync/node';

import { eventually, freePort, importClient, psql, root, startUplink } from './support.mjs';

const AppSchema = new Schema({
  lists: new Table({ created_at: column.text, name: column.text, owner_id: column.text }),
  todos: new Table(
    {
      list_id: column.text,
      created_at: column.text,
      completed_at: column.text,
      description: column.text,
      created_by: column.text,
      completed_by: column.text,
      completed: column.integer,
    },
    { indexes: { list: ['list_id'] } }
  ),
});

let uplink;
let UplinkConnector;
const dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-sdk-'));
const uploadedOpIds = [];
const reports = [];

before(async () => {
  ({ UplinkConnector } = await importClient('connector'));
  const closedPort = await freePort();
  uplink = await startUplink({
    schemaFile: path.join(root, 'examples/todo/schema.sql'),
    configFile: path.join(root, 'examples/todo/uplink.yaml'),
    env: { UPLINK__AUTH__POWERSYNC_URL: `http://127.0.0.1:${closedPort}` },
  });
});

after(async () => {
  await uplink?.stop();
});

// No PowerSync Service runs here: drop the SDK's reports of the refused sync
// stream, keep everything else.
const logger = {
  log(record) {
    if (record.level >= 40 && !/sync error|ECONNREFUSED|fetch failed/i.test(`${record.message} ${record.error ?? ''}`)) {
      console.error(`[PowerSync] ${record.message}`, record.error ?? '');
    }
  },
};

function openDatabase() {
  return new PowerSyncDatabase({
    schema: AppSchema,
    database: { dbFilename: 'client.db', dbLocation: dbDir },
    logger,
  });
}

function connector() {
  // Record what the SDK hands to uploadData, to check op_id ordering.
  const recordingFetch = async (url, init) => {
    if (String(url).endsWith('/api/data') && init?.body) {
      for (const entry of JSON.parse(init.body).batch) uploadedOpIds.push(entry.op_id);
    }
    return fetch(url, init);
  };
  return new UplinkConnector({
    url: uplink.baseUrl,
    tokenQuery: { user_id: 'sdk-user' },
    fetch: recordingFetch,
    onResults: (report) => reports.push(report),
  });
}

async function queueEmpty(db) {
  return eventually(async () => (await db.getUploadQueueStats()).count === 0);
}

function rows(sql) {
  return psql(uplink.dbUrl, sql)
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}

test('writes from the real SDK arrive in Postgres with their types, and op_ids never go back', async () => {
  const db = openDatabase();
  await db.init();
  await db.connect(connector(), { crudUploadThrottleMs: 10, retryDelayMs: 100 });

  const listId = randomUUID();
  const todoIds = [randomUUID(), randomUUID(), randomUUID()];
  await db.writeTransaction(async (tx) => {
    await tx.execute('INSERT INTO lists (id, created_at, name, owner_id) VALUES (?, ?, ?, ?)', [
      listId,
      '2024-05-01 09:00:00',
      'Groceries "weekly" — ünïcode ✓',
      'sdk-user',
    ]);
    for (const [i, id] of todoIds.entries()) {
      await tx.execute(
        'INSERT INTO todos (id, list_id, created_at, description, completed, created_by) VALUES (?, ?, ?, ?, ?, ?)',
        [id, listId, '2024-05-01T09:00:05.000Z', `it's todo #${i}; DROP TABLE todos; --`, 0, 'sdk-user']
      );
    }
  });
  await db.execute('UPDATE todos SET completed = 1, completed_at = ?, completed_by = ? WHERE id = ?', [
    '2024-05-01T10:15:30.250Z',
    'sdk-user',
    todoIds[0],
  ]);
  await db.execute('UPDATE todos SET completed_at = NULL, completed = 0 WHERE id = ?', [todoIds[0]]);
  await db.execute('UPDATE todos SET description = ? WHERE id = ?', ['line\nbreak \\ backslash 🎉', todoIds[1]]);
  await db.execute('DELETE FROM todos WHERE id = ?', [todoIds[2]]);

  await queueEmpty(db);

  const lists = rows(`SELECT row_to_json(l) FROM (SELECT id, name, owner_id, created_at FROM lists) l`);
  assert.deepEqual(lists, [
    { id: listId, name: 'Groceries "weekly" — ünïcode ✓', owner_id: 'sdk-user', created_at: '2024-05-01T09:00:00+00:00' },
  ]);
  const todos = rows(
    `SELECT row_to_json(t) FROM (SELECT id, description, completed, completed_at, completed_by, list_id
       FROM todos ORDER BY description) t`
  );
  assert.equal(todos.length, 2);
  const byId = Object.fromEntries(todos.map((t) => [t.id, t]));
  assert.deepEqual(byId[todoIds[0]], {
    id: todoIds[0],
    description: "it's todo #0; DROP TABLE todos; --",
    completed: false,
    completed_at: null,
    completed_by: 'sdk-user',
    list_id: listId,
  });
  assert.equal(byId[todoIds[1]].description, 'line\nbreak \\ backslash 🎉');
  assert.equal(byId[todoIds[1]].completed, false);
  assert.equal(byId[todoIds[2]], undefined, 'the deleted todo is gone');
  assert.deepEqual(reports, [], 'nothing was rejected');

  // op_ids only grow, also after the queue emptied and across a reopen.
  const clientId = await db.getClientId();
  const beforeReopen = Math.max(...uploadedOpIds);
  await db.close();
  const reopened = openDatabase();
  await reopened.init();
  assert.equal(await reopened.getClientId(), clientId, 'the client id survives a reopen');
  await reopened.connect(connector(), { crudUploadThrottleMs: 10, retryDelayMs: 100 });
  await reopened.execute('UPDATE lists SET name = ? WHERE id = ?', ['Renamed after reopen', listId]);
  await queueEmpty(reopened);
  const afterReopen = uploadedOpIds.slice(uploadedOpIds.indexOf(beforeReopen) + 1);
  assert.ok(afterReopen.length > 0);
  assert.ok(afterReopen.every((opId) => opId > beforeReopen), `op_ids ${uploadedOpIds} must increase`);
  for (let i = 1; i < uploadedOpIds.length; i++) {
    assert.ok(uploadedOpIds[i] > uploadedOpIds[i - 1] || uploadedOpIds[i] === uploadedOpIds[i - 1],
      `op_ids never decrease: ${uploadedOpIds}`);
  }
  const [progress] = rows(
    `SELECT to_json(last_op_id) FROM uplink.client_progress WHERE user_id = 'sdk-user' AND client_id = '${clientId}'`
  );
  assert.equal(progress, Math.max(...uploadedOpIds));
  assert.equal(rows(`SELECT to_json(name) FROM lists`)[0], 'Renamed after reopen');
  await reopened.close();
});
