// End to end with the real PowerSync SDK (@powersync/node) into MySQL: the
// todo demo's MySQL schema (examples/todo/schema.mysql.sql) behind uplink,
// a client writing in several transactions through
// clients/typescript/connector.ts; everything arrives with MySQL's types,
// a write into another user's list is refused by the app's trigger and
// reported, and the upload queue empties.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PowerSyncDatabase, Schema, Table, column } from '@powersync/node';

import { eventually, freePort, importClient, mysql, root, startUplinkOnMysql } from './support.mjs';

const AppSchema = new Schema({
  lists: new Table({ created_at: column.text, name: column.text, owner_id: column.text }),
  todos: new Table({
    list_id: column.text,
    created_at: column.text,
    completed_at: column.text,
    description: column.text,
    created_by: column.text,
    completed_by: column.text,
    completed: column.integer,
  }),
});

let uplink;
let UplinkConnector;
const dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-sdk-mysql-'));
const reports = [];

before(async () => {
  ({ UplinkConnector } = await importClient('connector'));
  const closedPort = await freePort();
  uplink = await startUplinkOnMysql({
    schemaFile: path.join(root, 'examples/todo/schema.mysql.sql'),
    configFile: path.join(root, 'examples/todo/uplink.yaml'),
    env: { UPLINK__AUTH__POWERSYNC_URL: `http://127.0.0.1:${closedPort}` },
  });
});

after(async () => {
  await uplink?.stop();
});

// No PowerSync Service runs here: drop the SDK's reports of the refused sync stream.
const logger = {
  log(record) {
    if (record.level >= 40 && !/sync error|ECONNREFUSED|fetch failed/i.test(`${record.message} ${record.error ?? ''}`)) {
      console.error(`[PowerSync] ${record.message}`, record.error ?? '');
    }
  },
};

/** The database where uplink keeps its own tables, beside the app's. */
function ownTables() {
  return `\`${new URL(uplink.dbUrl).pathname.replace(/^\//, '')}_uplink\``;
}

function rows(sql) {
  return mysql(uplink.dbUrl, sql)
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line));
}

test('writes from the real SDK arrive in MySQL with their types; a refused one is reported', async () => {
  const db = new PowerSyncDatabase({
    schema: AppSchema,
    database: { dbFilename: 'client.db', dbLocation: dbDir },
    logger,
  });
  await db.init();
  await db.connect(
    new UplinkConnector({
      url: uplink.baseUrl,
      tokenQuery: { user_id: 'sdk-user' },
      onResults: (report) => reports.push(report),
    }),
    { crudUploadThrottleMs: 10, retryDelayMs: 100 }
  );

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
        [id, listId, '2024-05-01T11:00:05.000+02:00', `it's todo #${i}; DROP TABLE todos; --`, 0, 'sdk-user']
      );
    }
  });
  await db.execute('UPDATE todos SET completed = 1, completed_at = ?, completed_by = ? WHERE id = ?', [
    '2024-05-01T10:15:30.250Z',
    'sdk-user',
    todoIds[0],
  ]);
  await db.execute('UPDATE todos SET description = ? WHERE id = ?', ['line\nbreak \\ backslash 🎉', todoIds[1]]);
  await db.execute('DELETE FROM todos WHERE id = ?', [todoIds[2]]);
  // A todo in a list nobody owns: the app's trigger refuses it.
  const stray = randomUUID();
  await db.execute('INSERT INTO todos (id, list_id, description, completed, created_by) VALUES (?, ?, ?, ?, ?)', [
    stray,
    randomUUID(),
    'in no list of mine',
    0,
    'sdk-user',
  ]);

  await eventually(async () => (await db.getUploadQueueStats()).count === 0);

  assert.deepEqual(rows('SELECT JSON_OBJECT(\'id\', id, \'name\', name, \'owner_id\', owner_id, \'created_at\', created_at) FROM lists'), [
    { id: listId, name: 'Groceries "weekly" — ünïcode ✓', owner_id: 'sdk-user', created_at: '2024-05-01 09:00:00.000000' },
  ]);
  const todos = rows(
    `SELECT JSON_OBJECT('id', id, 'description', description, 'completed', completed, 'completed_at', completed_at,
       'completed_by', completed_by, 'created_at', created_at) FROM todos`
  );
  const byId = Object.fromEntries(todos.map((t) => [t.id, t]));
  assert.equal(todos.length, 2);
  assert.deepEqual(byId[todoIds[0]], {
    id: todoIds[0],
    description: "it's todo #0; DROP TABLE todos; --",
    completed: 1,
    completed_at: '2024-05-01 10:15:30.250000',
    completed_by: 'sdk-user',
    created_at: '2024-05-01 09:00:05.000000',
  });
  assert.equal(byId[todoIds[1]].description, 'line\nbreak \\ backslash 🎉');
  assert.equal(byId[stray], undefined, 'the refused todo was not written');

  const rejected = reports.flatMap((r) => r.results ?? []).filter((r) => r.status === 'rejected');
  assert.deepEqual(
    rejected.map((r) => [r.id, r.code]),
    [[stray, 'check_violation']]
  );
  const [letter] = rows(
    `SELECT JSON_OBJECT('code', code, 'user', user_id) FROM ${ownTables()}.dead_letters`
  );
  assert.deepEqual(letter, { code: 'check_violation', user: 'sdk-user' });
  const [progress] = rows(
    `SELECT last_op_id FROM ${ownTables()}.client_progress WHERE user_id = 'sdk-user' AND client_id = '${await db.getClientId()}'`
  );
  assert.ok(progress > 0, 'the client progress is kept');
  await db.close();
});
