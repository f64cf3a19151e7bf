import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../src/cli/context.ts';
import { runCli } from '../src/cli/main.ts';
import { AppError } from '../src/common/errors.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { listDeliveries } from '../src/delivery/delivery-store.ts';
import { openHerald } from '../src/main.ts';
import type { Store } from '../src/store/database.ts';
import { databaseStatus } from '../src/workflows/db-status.ts';
import { postgresUnavailable } from './support/databases.ts';
import { postgresWithOperator } from './support/postgres-operator.ts';
import { waitFor } from './support/wait.ts';

// A query hung behind a lock another session holds (an operator's LOCK TABLE in psql) used to hold
// its pooled connection for good, and the role stalled without a word: it now fails with an error
// naming the setting, the cause and the query.

describe.skipIf(postgresUnavailable)('PostgreSQL lock and statement timeouts', () => {
  let database: Awaited<ReturnType<typeof postgresWithOperator>>;
  let store: Store;
  let operator: pg.Client;

  beforeAll(async () => {
    database = await postgresWithOperator('timeouts', { timeouts: { lockTimeoutMs: 300, statementTimeoutMs: 400 } });
    ({ store, operator } = database);
  });
  afterAll(async () => {
    await database?.close();
  });

  it("a query behind an operator's LOCK TABLE fails with DATABASE_LOCK_TIMEOUT instead of hanging", async () => {
    await operator.query('begin');
    await operator.query('lock table deliveries in access exclusive mode');
    try {
      const error = await listDeliveries(store).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ code: 'DATABASE_LOCK_TIMEOUT', details: { sqlState: '55P03' } });
      expect((error as AppError).message).toContain('database.lockTimeoutMs (300 ms)');
      expect((error as AppError).message).toContain('pg_blocking_pids');
      expect((error as AppError).message).toMatch(/the query was: select .* from "deliveries"/);
    } finally {
      await operator.query('rollback');
    }
    // The connection went back to the pool and the next query runs.
    expect(await listDeliveries(store)).toEqual([]);
  });

  it('a statement running past its limit fails with DATABASE_STATEMENT_TIMEOUT', async () => {
    const error = await sql`select pg_sleep(30)`.execute(store.db).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DATABASE_STATEMENT_TIMEOUT', details: { sqlState: '57014' } });
    expect((error as AppError).message).toContain('database.statementTimeoutMs (400 ms)');
  });

  it('db status names a query waiting for a lock and the session holding it', async () => {
    const waiting = new pg.Client({ connectionString: database.url });
    await waiting.connect();
    // What a CREATE INDEX without CONCURRENTLY takes: writes wait, reads (db status's sizes) do not.
    await operator.query('begin');
    await operator.query('lock table lists in share mode');
    const holder = Number((await operator.query('select pg_backend_pid() as pid')).rows[0].pid);
    const blocked = waiting.query("insert into lists (name, created_at) values ('waits', 1)");
    try {
      let status = await databaseStatus(store);
      await waitFor(async () => {
        status = await databaseStatus(store);
        return status.lockWaits.length > 0;
      }, 'the query to wait for the lock');
      expect(status.lockWaits[0]).toMatchObject({
        blockerPid: holder,
        blockerState: 'idle in transaction',
        blockerQuery: 'select pg_backend_pid() as pid',
        query: "insert into lists (name, created_at) values ('waits', 1)",
      });
    } finally {
      await operator.query('rollback');
      await blocked;
      await waiting.end();
    }
  });

  it('the CLI reports the lock wait with its code, from database.lockTimeoutMs', async () => {
    const stdout: string[] = [];
    const context: CliContext = {
      output: { out: (line) => stdout.push(line), err: () => undefined },
      open: (options = {}) =>
        openHerald({
          ...options,
          config: parseConfig({ database: { url: database.url, lockTimeoutMs: 300 } }, 'test'),
          logger: silentLogger,
        }),
    };
    await operator.query('begin');
    await operator.query('lock table deliveries in access exclusive mode');
    try {
      expect(await runCli(['node', 'herald', 'delivery', 'list', '--json'], context)).toBe(1);
    } finally {
      await operator.query('rollback');
    }
    const error = stdout.map((l) => JSON.parse(l) as { error?: { code: string } }).find((l) => l.error)?.error;
    expect(error?.code).toBe('DATABASE_LOCK_TIMEOUT');
  });
});
