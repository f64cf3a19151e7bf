import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { createScratchDatabase, postgresAdminUrl, type ScratchDatabase } from './scratch-database.ts';
import { openStore, type Dialect, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';

// Integration test bodies run against both dialects, each on a fresh database per test file.
// Outside CI a missing PostgreSQL skips its half with a printed reason; in CI it fails the run.

export { postgresAdminUrl };

async function probePostgres(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (error) {
    return `PostgreSQL not reachable at ${postgresAdminUrl}: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => {});
  }
}

export const postgresUnavailable = await probePostgres();
if (postgresUnavailable) {
  if (process.env.CI) throw new Error(`CI requires PostgreSQL: ${postgresUnavailable}`);
  console.warn(`skipping PostgreSQL tests: ${postgresUnavailable}`);
}

export type TestDatabase = ScratchDatabase;

/** A fresh, empty database of the given dialect (not yet migrated). */
export function createTestDatabase(dialect: Dialect): Promise<TestDatabase> {
  return createScratchDatabase(dialect);
}

/** A fresh database of the given dialect, opened and migrated: one instance of a two-instance test. */
export async function openMigratedDatabase(dialect: Dialect): Promise<{ store: Store; database: TestDatabase }> {
  const database = await createTestDatabase(dialect);
  const store = openStore(database.url);
  await migrateToLatest(store);
  return { store, database };
}

/** Marketing and execution on different dialects, both ways: the mid-sourcing loopback tests. */
export const crossDialectPairs: Array<[Dialect, Dialect]> = [
  ['sqlite', 'postgres'],
  ['postgres', 'sqlite'],
];

export const testDialects: Dialect[] = ['sqlite', 'postgres'];

export interface DialectContext {
  dialect: Dialect;
  /** The migrated store of this test file for this dialect. */
  store(): Store;
  url(): string;
}

/** Runs `body` once per dialect inside a describe block with a fresh migrated database. */
export function describeEachDialect(title: string, body: (context: DialectContext) => void): void {
  for (const dialect of testDialects) {
    const skip = dialect === 'postgres' && postgresUnavailable !== undefined;
    describe.skipIf(skip)(`${title} [${dialect}]`, () => {
      let database: TestDatabase | undefined;
      let store: Store | undefined;
      beforeAll(async () => {
        database = await createTestDatabase(dialect);
        store = openStore(database.url);
        await migrateToLatest(store);
      });
      afterAll(async () => {
        await store?.close();
        await database?.drop();
      });
      body({
        dialect,
        store: () => {
          if (!store) throw new Error('store not ready');
          return store;
        },
        url: () => {
          if (!database) throw new Error('database not ready');
          return database.url;
        },
      });
    });
  }
}
