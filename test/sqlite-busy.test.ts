import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';

// A write on the main SQLite connection waiting for another connection's lock spun inside SQLite
// (busy_timeout) with the event loop stopped: the role froze for up to 5 s, and the other connection,
// when it lived on the same thread, could never finish. The wait is now retried on timers.

async function lockedDatabase() {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-busy-')), 'herald.db');
  const store = openStore(`sqlite:${file}`, { sqliteBusyWaitMs: 2_000 });
  await migrateToLatest(store);
  const other = new SqliteDatabase(file);
  other.exec('begin immediate');
  return { file, store, other };
}

describe('SQLite: a write waiting for another connection', () => {
  it('keeps the event loop running and succeeds once the other connection commits', async () => {
    const { store, other } = await lockedDatabase();
    try {
      const insert = store.db.insertInto('lists').values({ name: 'waited', created_at: 1 }).execute();
      // This timer only fires if the wait leaves the event loop free; it ends the other transaction.
      setTimeout(() => other.exec('commit'), 20);
      await insert;
      const rows = await store.db.selectFrom('lists').select('name').execute();
      expect(rows.map((r) => r.name)).toEqual(['waited']);
    } finally {
      other.close();
      await store.close();
    }
  });

  it('fails with DATABASE_BUSY naming the file when the lock is never released', async () => {
    const { file, store, other } = await lockedDatabase();
    try {
      const error = await store.db
        .insertInto('lists')
        .values({ name: 'never', created_at: 1 })
        .execute()
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'DATABASE_BUSY', details: { database: file } });
      expect((error as Error).message).toContain('stayed locked by another connection for 2000 ms');
    } finally {
      other.exec('rollback');
      other.close();
      await store.close();
    }
  });
});
