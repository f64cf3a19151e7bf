import pg from 'pg';
import { openStore, type OpenStoreOptions, type Store } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { createScratchDatabase } from './scratch-database.ts';

/**
 * A fresh migrated PostgreSQL database with Herald's store on it, and a second session of its own,
 * as an operator's psql holds one (LOCK TABLE, BEGIN left open): for tests of what Herald does
 * while someone else holds a lock. `close()` ends both and drops the database.
 */
export async function postgresWithOperator(
  label: string,
  options: OpenStoreOptions = {},
): Promise<{ url: string; store: Store; operator: pg.Client; close(): Promise<void> }> {
  const database = await createScratchDatabase('postgres', label);
  const store = openStore(database.url, options);
  await migrateToLatest(store);
  const operator = new pg.Client({ connectionString: database.url });
  await operator.connect();
  return {
    url: database.url,
    store,
    operator,
    close: async () => {
      await operator.end();
      await store.close();
      await database.drop();
    },
  };
}
