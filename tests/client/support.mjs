// Shared by the client tests: a fresh database, a running `uplink serve`, psql.
//
// Needs UPLINK_BIN (the uplink binary) and DATABASE_URL (a Postgres server
// where a fresh database may be created); scripts/test sets both, and
// UPLINK_TEST_MYSQL_URL (a MySQL or MariaDB server) for the MySQL tests.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');

/** Compiles clients/typescript (tsconfig.json) and imports one compiled module. */
export async function importClient(name) {
  execFileSync(path.join(here, 'node_modules', '.bin', 'tsc'), ['-p', here], { stdio: 'inherit' });
  return import(pathToFileURL(path.join(here, 'dist', `${name}.js`)).href);
}

export async function freePort() {
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

/** Runs SQL with psql against `url`; returns stdout (unaligned, tuples only). */
export function psql(url, sql) {
  return execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-X', '-q', '-At', '-c', sql], {
    env: { ...process.env, PGTZ: 'UTC' },
    encoding: 'utf8',
  });
}

/** The mysql/mariadb client's arguments for the server at `url`. */
function mysqlArgs(url) {
  const u = new URL(url);
  const args = ['-h', u.hostname, '-P', u.port || '3306', '-u', decodeURIComponent(u.username)];
  if (u.password) args.push(`-p${decodeURIComponent(u.password)}`);
  const database = u.pathname.replace(/^\//, '');
  if (database) args.push(database);
  return args;
}

function mysqlClient() {
  for (const name of ['mariadb', 'mysql']) {
    try {
      execFileSync(name, ['--version'], { stdio: 'ignore' });
      return name;
    } catch {
      // try the next name
    }
  }
  throw new Error('neither the mariadb nor the mysql client is installed');
}

/** Runs SQL (or a file, with `file`) on MySQL at `url`; returns stdout (tab-separated, no headers, unescaped). */
export function mysql(url, sql, { file } = {}) {
  return execFileSync(mysqlClient(), [...mysqlArgs(url), '--default-character-set=utf8mb4', '-N', '-B', '-r', ...(sql ? ['-e', sql] : [])], {
    encoding: 'utf8',
    input: file ? fs.readFileSync(file) : undefined,
  });
}

/**
 * Creates a fresh MySQL database on UPLINK_TEST_MYSQL_URL's server, loads
 * `schemaFile`, and starts `uplink serve` on it.
 */
export async function startUplinkOnMysql({ schemaFile, configFile, env = {} } = {}) {
  const server = process.env.UPLINK_TEST_MYSQL_URL;
  assert.ok(server, 'set UPLINK_TEST_MYSQL_URL to a MySQL or MariaDB server');
  const dbName = `uplink_client_${randomUUID().replaceAll('-', '')}`;
  mysql(server, `CREATE DATABASE \`${dbName}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  const dbUrl = `${server.replace(/\/+$/, '')}/${dbName}`;
  if (schemaFile) mysql(dbUrl, null, { file: schemaFile });
  return startUplink({ configFile, databaseUrl: dbUrl, env });
}

/**
 * The databases a client suite runs on, each a descriptor: `todoSchema`, the
 * todo example's tables for it; `start(options)`, uplink on a fresh database
 * of it (the options of `startUplink`); `query(uplink, sql)`, what `sql`
 * selects (one value per row, rows on lines, trimmed); `own(uplink, table)`,
 * one of uplink's own tables as `sql` names it.
 */
export const databases = [
  {
    name: 'Postgres',
    todoSchema: path.join(root, 'examples/todo/schema.sql'),
    start: (options) => startUplink(options),
    query: (uplink, sql) => psql(uplink.dbUrl, sql).trim(),
    own: (_uplink, table) => `uplink.${table}`,
  },
  {
    name: 'MySQL/MariaDB',
    todoSchema: path.join(root, 'examples/todo/schema.mysql.sql'),
    start: (options) => startUplinkOnMysql(options),
    query: (uplink, sql) => mysql(uplink.dbUrl, sql).trim(),
    // In the database beside the app's, named after it.
    own: (uplink, table) => `\`${new URL(uplink.dbUrl).pathname.replace(/^\//, '')}_uplink\`.${table}`,
  },
];

/**
 * Creates a fresh database (loading `schemaFile` when given), starts
 * `uplink serve` on it and resolves once /health/ready answers 200.
 */
export async function startUplink({ schemaFile, configFile, databaseUrl: given, env = {} } = {}) {
  const bin = process.env.UPLINK_BIN;
  assert.ok(bin, 'set UPLINK_BIN to the uplink binary');
  let dbUrl = given;
  if (!dbUrl) {
    assert.ok(process.env.DATABASE_URL, 'set DATABASE_URL to a Postgres server');
    const dbName = `uplink_client_${randomUUID().replaceAll('-', '')}`;
    psql(process.env.DATABASE_URL, `CREATE DATABASE "${dbName}"`);
    dbUrl = databaseUrl(dbName);
    if (schemaFile) {
      execFileSync('psql', [dbUrl, '-v', 'ON_ERROR_STOP=1', '-X', '-q', '-f', schemaFile]);
    }
  }
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-client-'));
  const args = configFile ? ['--config', configFile, 'serve'] : ['serve'];
  const child = spawn(bin, args, {
    cwd: root,
    env: {
      ...process.env,
      UPLINK_ENVIRONMENT: 'development',
      DATABASE_URL: dbUrl,
      UPLINK__SERVER__HOST: '127.0.0.1',
      UPLINK__SERVER__PORT: String(port),
      UPLINK__SERVER__DATA_DIR: dataDir,
      UPLINK__DATABASE__MIGRATE_ON_START: 'true',
      // A free port for the metrics listener: several uplinks run at once.
      UPLINK__METRICS__PORT: '0',
      RUST_LOG: 'warn',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const baseUrl = `http://127.0.0.1:${port}`;
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
  return {
    baseUrl,
    dbUrl,
    dataDir,
    child,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Polls `check` until it returns a truthy value (bounded by `tries`). */
export async function eventually(check, { tries = 300, delayMs = 100 } = {}) {
  let last;
  for (let i = 0; i < tries; i++) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, delayMs));
  }
  throw new Error('condition not reached');
}
