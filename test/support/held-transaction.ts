import type { Kysely } from 'kysely';
import type { Store } from '../../src/store/database.ts';
import type { Database } from '../../src/store/tables.ts';

/**
 * Opens a transaction, runs `writes` in it and keeps it open, uncommitted, until `commit()`: for tests
 * of what other writers and readers see (and whether they wait) while a transaction holds its rows.
 */
export async function holdTransaction(
  store: Store,
  writes: (trx: Kysely<Database>) => Promise<void>,
): Promise<{ commit(): Promise<void> }> {
  let allowCommit!: () => void;
  const mayCommit = new Promise<void>((resolve) => (allowCommit = resolve));
  let written!: () => void;
  let failed!: (error: unknown) => void;
  const writesDone = new Promise<void>((resolve, reject) => {
    written = resolve;
    failed = reject;
  });
  const transaction = store.db.transaction().execute(async (trx) => {
    await writes(trx);
    written();
    await mayCommit;
  });
  transaction.catch(failed);
  await writesDone;
  return {
    commit: async () => {
      allowCommit();
      await transaction;
    },
  };
}
