import { sql } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/database.ts';
import { systemClock } from '../src/common/clock.ts';
import { parseConfig } from '../src/config/load.ts';
import { runMaintenance } from '../src/workflows/maintenance.ts';
import { postgresReindexConcurrently } from '../src/workflows/maintenance-store.ts';
import { postgresUnavailable } from './support/databases.ts';
import { postgresWithOperator } from './support/postgres-operator.ts';

// A REINDEX INDEX CONCURRENTLY that fails midway (a lock timeout behind a long write transaction,
// the maintenance timeout) left its half-built copy `<index>_ccnew` behind, INVALID: never used by
// a query, yet written by every insert and update of the MTA, and a new one was added by each
// failed run. The next maintenance now drops such copies first (writes go on: DROP INDEX CONCURRENTLY).

async function indexesOf(store: Store, table: string): Promise<Array<{ name: string; valid: boolean }>> {
  const result = await sql<{ name: string; valid: boolean }>`
    select ic.relname as name, i.indisvalid as valid from pg_index i
    join pg_class c on c.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid
    where c.relname = ${table} and c.relnamespace = current_schema()::regnamespace order by ic.relname`.execute(
    store.db,
  );
  return result.rows;
}

describe.skipIf(postgresUnavailable)('a concurrent reindex that fails', () => {
  let database: Awaited<ReturnType<typeof postgresWithOperator>>;
  let store: Store;
  let operator: pg.Client;

  beforeAll(async () => {
    database = await postgresWithOperator('reindexfail', { timeouts: { lockTimeoutMs: 300, statementTimeoutMs: 0 } });
    ({ store, operator } = database);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('is cleaned up by the next maintenance, which says so', async () => {
    const before = await indexesOf(store, 'delivery_logs');
    // A writer's transaction left open: the reindex waits for it after building its copy, and gives up.
    await operator.query('begin');
    await operator.query('lock table delivery_logs in row exclusive mode');
    try {
      await expect(postgresReindexConcurrently(store, 'delivery_logs_due', 0)).rejects.toThrow(/lock/i);
    } finally {
      await operator.query('rollback');
    }
    expect(await indexesOf(store, 'delivery_logs')).toContainEqual({ name: 'delivery_logs_due_ccnew', valid: false });

    const logged: string[] = [];
    const summary = await runMaintenance(
      store,
      parseConfig({}, 'test'),
      systemClock,
      { log: async (line) => void logged.push(line), keepAlive: async () => {} },
      { source: 'test' },
    );
    expect(summary).toMatchObject({ droppedInvalidIndexes: ['delivery_logs_due_ccnew'] });
    expect(logged).toContain(
      'DROP INDEX CONCURRENTLY delivery_logs_due_ccnew: invalid copy left by an earlier REINDEX CONCURRENTLY',
    );
    expect(await indexesOf(store, 'delivery_logs')).toEqual(before);
  }, 60_000);
});
