// The reference write contract end to end: a faithful port of the connector
// of powersync-ja/powersync-reference-write-implementation
// (example-client/src/PowersyncConnector.ts `uploadTransactionBatch`,
// example-client/src/library/powersync/WriteAPIClient.ts,
// example-client/src/library/powersync/TransactionBatching.ts
// `completeAcceptedPrefix`, example-client/src/library/powersync/OpenAPITransport.ts)
// uploads real @powersync/node transactions to a running uplink, which must
// write the rows and answer what that connector's result check accepts.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PowerSyncDatabase, Schema, Table, column } from '@powersync/node';

import { psql, root, startUplink } from './support.mjs';

// --- the port -------------------------------------------------------------

class AuthenticationError extends Error {}

/** OpenAPITransport.ts `postTransactionBatch`, with fetch for openapi-fetch. */
function createTransport(baseUrl, getAuthToken) {
  return {
    async postTransactionBatch(body) {
      const response = await fetch(`${baseUrl}/api/data`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await getAuthToken()}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const data = await response.json();
      if (!response.ok) {
        if (response.status === 401 || response.status === 403) {
          throw new AuthenticationError(`Authentication failed (${response.status}) posting transaction batch`);
        }
        throw new Error(`Failed to post transaction batch: ${data.message}`);
      }
      return data;
    },
  };
}

/** WriteAPIClient.ts `toApiTransaction`. `previous_values` is in the
 * contract's OpenAPI CrudEntry (trackPreviousValues); the example client
 * leaves it out, this port sends it when the SDK tracked it. */
const toApiTransaction = (transaction) => ({
  crud: transaction.crud.map((op) => ({
    id: op.id,
    op: op.op,
    table: op.table,
    ...(op.transactionId != null && { transaction_id: op.transactionId }),
    ...(op.opData != null && { op_data: op.opData }),
    ...(op.previousValues != null && { previous_values: op.previousValues }),
  })),
  ...(transaction.transactionId != null && { transaction_id: transaction.transactionId }),
});

/** WriteAPIClient.ts `toResult`. */
const toResult = (response) => {
  if (response?.status === 'fatal_error')
    return {
      status: response.status,
      message: response.message,
      requiresClientHandling: response.requires_client_handling,
      failedOperation: response.failed_operation,
    };
  if (response?.status === 'retryable_error')
    return { status: response.status, message: response.message, retryAfterMs: response.retry_after_ms };
  return response;
};

/** TransactionBatching.ts `completeAcceptedPrefix`, verbatim but for types. */
async function completeAcceptedPrefix(batch, results, onFatal, onRetryable) {
  if (!Array.isArray(results) || results.length !== batch.length) throw new Error('Invalid batch result count');
  let boundary = -1;
  try {
    for (const [index, result] of results.entries()) {
      if (result?.status === 'success') {
        boundary = index;
        continue;
      }
      if (result?.status === 'fatal_error') {
        if (
          typeof result.requiresClientHandling !== 'boolean' ||
          !result.failedOperation ||
          typeof result.failedOperation.error_code !== 'string' ||
          (result.failedOperation.message !== undefined && typeof result.failedOperation.message !== 'string') ||
          (result.failedOperation.operation_index !== undefined &&
            (!Number.isInteger(result.failedOperation.operation_index) || result.failedOperation.operation_index < 0))
        ) {
          throw new Error('Malformed fatal transaction result');
        }
        if (result.requiresClientHandling) {
          const decision = await onFatal(index, { ...result, requiresClientHandling: true });
          if (decision !== 'complete') throw new Error('Fatal transaction retained for client handling');
          boundary = index;
          return;
        }
        boundary = index;
        continue;
      }
      if (result?.status === 'retryable_error') {
        if (boundary >= 0) {
          const accepted = boundary;
          boundary = -1;
          await batch[accepted].complete();
        }
        await onRetryable(result);
        throw new Error('Retryable transaction retained');
      }
      if (result?.status === 'not_attempted') return;
      throw new Error('Malformed transaction result');
    }
  } finally {
    if (boundary >= 0) await batch[boundary].complete();
  }
}

/** PowersyncConnector.ts `uploadTransactionBatch` (transport errors rethrown). */
async function uploadTransactionBatch(database, transport, batching = { maxTransactions: 50, maxOperations: 500 }) {
  const batch = [];
  let operations = 0;
  for await (const transaction of database.getCrudTransactions()) {
    batch.push(transaction);
    operations += transaction.crud.length;
    if (batch.length >= batching.maxTransactions || operations >= batching.maxOperations) break;
  }
  if (batch.length === 0) return { sent: 0 };
  const response = await transport.postTransactionBatch({ transactions: batch.map(toApiTransaction) });
  const results = response.results.map(toResult);
  const fatal = [];
  await completeAcceptedPrefix(
    batch,
    results,
    async (index, result) => {
      fatal.push(result);
      return 'retain';
    },
    async (result) => {
      throw new Error(result.message ?? 'Retryable error');
    },
  );
  return { sent: batch.length, response };
}

// --- the test -------------------------------------------------------------

const AppSchema = new Schema({
  lists: new Table({ created_at: column.text, name: column.text, owner_id: column.text }, { trackPrevious: true }),
  todos: new Table({ list_id: column.text, description: column.text, created_by: column.text }),
});

let uplink;
let transport;
const dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-reference-'));

before(async () => {
  uplink = await startUplink({
    schemaFile: path.join(root, 'examples/todo/schema.sql'),
    configFile: path.join(root, 'examples/todo/uplink.yaml'),
  });
  const token = async () => {
    const response = await fetch(`${uplink.baseUrl}/api/auth/token?user_id=reference-user`);
    assert.equal(response.status, 200);
    return (await response.json()).token;
  };
  transport = createTransport(uplink.baseUrl, token);
});

after(async () => {
  // Also when an assertion failed: an open database keeps the process alive.
  await Promise.all(opened.map((db) => db.close()));
  await uplink?.stop();
});

const opened = [];

function openDatabase(name) {
  const db = new PowerSyncDatabase({ schema: AppSchema, database: { dbFilename: `${name}.db`, dbLocation: dbDir } });
  opened.push(db);
  return db;
}

test('a PUT then a PATCH in the reference shape end with the patched row and pass the result check', async () => {
  const db = openDatabase('patch');
  const list = randomUUID();
  await db.writeTransaction(async (tx) => {
    await tx.execute('INSERT INTO lists (id, name, owner_id, created_at) VALUES (?, ?, ?, ?)', [
      list,
      'Groceries',
      'reference-user',
      '2024-06-01T08:00:00Z',
    ]);
  });
  await db.writeTransaction(async (tx) => {
    await tx.execute('UPDATE lists SET name = ? WHERE id = ?', ['Weekend groceries', list]);
  });

  const sentBodies = [];
  const recording = {
    postTransactionBatch: (body) => {
      sentBodies.push(body);
      return transport.postTransactionBatch(body);
    },
  };

  const { sent, response } = await uploadTransactionBatch(db, recording);

  assert.equal(sent, 2);
  const patch = sentBodies[0].transactions[1].crud[0];
  assert.deepEqual([patch.op, patch.op_data, patch.previous_values], [
    'PATCH',
    { name: 'Weekend groceries' },
    { name: 'Groceries', owner_id: 'reference-user', created_at: '2024-06-01T08:00:00Z' },
  ]);
  assert.deepEqual(response.results, [{ status: 'success' }, { status: 'success' }]);
  assert.equal((await db.getUploadQueueStats()).count, 0, 'both transactions completed');
  assert.equal(
    psql(uplink.dbUrl, `SELECT name || '|' || owner_id FROM lists WHERE id = '${list}'`).trim(),
    'Weekend groceries|reference-user',
  );
});

test('a rejected transaction is a backend-handled fatal result: completed, dead-lettered, the rest applied', async () => {
  const db = openDatabase('fatal');
  const [first, second] = [randomUUID(), randomUUID()];
  const orphan = randomUUID();
  for (const [sql, args] of [
    ['INSERT INTO lists (id, name, owner_id) VALUES (?, ?, ?)', [first, 'First', 'reference-user']],
    ['INSERT INTO todos (id, list_id, description) VALUES (?, ?, ?)', [orphan, randomUUID(), 'no such list']],
    ['INSERT INTO lists (id, name, owner_id) VALUES (?, ?, ?)', [second, 'Second', 'reference-user']],
  ]) {
    await db.writeTransaction((tx) => tx.execute(sql, args));
  }

  const { sent, response } = await uploadTransactionBatch(db, transport);

  assert.equal(sent, 3);
  assert.deepEqual(
    response.results.map((r) => r.status),
    ['success', 'fatal_error', 'success'],
  );
  const fatal = response.results[1];
  assert.equal(fatal.requires_client_handling, false);
  // The example schema's trigger (a todo sits in a list its owner owns)
  // refuses it before the foreign key is checked.
  assert.equal(fatal.failed_operation.error_code, 'check_violation');
  assert.equal(fatal.failed_operation.operation_index, 0);
  assert.equal((await db.getUploadQueueStats()).count, 0, 'every transaction completed');
  assert.equal(psql(uplink.dbUrl, `SELECT count(*) FROM lists WHERE id IN ('${first}', '${second}')`).trim(), '2');
  assert.equal(psql(uplink.dbUrl, `SELECT count(*) FROM todos WHERE id = '${orphan}'`).trim(), '0');
  assert.equal(
    psql(uplink.dbUrl, `SELECT code FROM uplink.dead_letters WHERE entries->0->>'id' = '${orphan}'`).trim(),
    'check_violation',
  );
});
