import { afterEach, expect, it } from 'vitest';
import { inTransaction, openStore, type Store } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createScratchDatabase, type ScratchDatabase } from './support/scratch-database.ts';
import { holdSqliteWriteLock } from './support/sqlite-lock-holder.ts';

// Another process holds the SQLite write lock: a transaction of this process waits for it without
// stopping the process (the inbound role's other SMTP sessions, the MTA's sockets), commits once it
// is free, and fails with DATABASE_BUSY when it stays held past the wait.

let database: ScratchDatabase | undefined;
let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  await database?.drop();
});

async function openLockedStore(sqliteBusyWaitMs: number) {
  database = await createScratchDatabase('sqlite', 'write_lock');
  store = openStore(database.url, { sqliteBusyWaitMs });
  await migrateToLatest(store);
  const lock = await holdSqliteWriteLock(database.url.slice('sqlite:'.length));
  return { store, lock };
}

const countHard = (s: Store) =>
  s.db.insertInto('inbound_counters').values({ name: 'hard', count: 1, last_at: 0 }).execute();

it('waits for the write lock without blocking the event loop, and commits once it is released', async () => {
  const { store, lock } = await openLockedStore(60_000);
  let settled = false;
  const transaction = inTransaction(store, countHard).finally(() => (settled = true));
  try {
    // A timer fires while the transaction waits: the event loop was not held by the wait.
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(settled).toBe(false);
  } finally {
    await lock.release();
  }
  await transaction;
  const rows = await store.db.selectFrom('inbound_counters').selectAll().execute();
  expect(rows).toMatchObject([{ name: 'hard', count: 1 }]);
});

it('fails with DATABASE_BUSY once the lock has been held past the wait, each waiter at once after that', async () => {
  const { store, lock } = await openLockedStore(200);
  try {
    await expect(inTransaction(store, countHard)).rejects.toMatchObject({ code: 'DATABASE_BUSY' });
    let settled = false;
    const second = inTransaction(store, countHard).finally(() => (settled = true));
    await expect(second).rejects.toMatchObject({ code: 'DATABASE_BUSY' });
    expect(settled).toBe(true);
  } finally {
    await lock.release();
  }
  await inTransaction(store, countHard);
  expect(await store.db.selectFrom('inbound_counters').selectAll().execute()).toHaveLength(1);
});
