import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import { openStore } from '../src/store/database.ts';
import { createSqliteStatementRunner } from '../src/store/sqlite-statement-runner.ts';

const dir = mkdtempSync(join(tmpdir(), 'herald-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('runs statements on its own connection to the file, with SQLite errors and codes, until closed', async () => {
  const store = openStore(`sqlite:${join(dir, 'runner.db')}`);
  try {
    await sql`create table items (id integer primary key, name text not null unique)`.execute(store.db);
    const runner = createSqliteStatementRunner(store.location);
    const insert = (names: string[]) =>
      runner.run(
        store.db
          .insertInto('items' as never)
          .values(names.map((name) => ({ name })) as never)
          .compile(),
      );
    expect(await insert(['a', 'b', 'c'])).toBe(3);
    // Written by the worker's connection, read by the store's.
    const rows = await sql<{ name: string }>`select name from items order by id`.execute(store.db);
    expect(rows.rows.map((row) => row.name)).toEqual(['a', 'b', 'c']);
    // A failing statement changes nothing and says why, with SQLite's code.
    await expect(insert(['d', 'a'])).rejects.toMatchObject({
      code: 'SQLITE_CONSTRAINT_UNIQUE',
      message: expect.stringContaining('UNIQUE constraint failed: items.name'),
    });
    const count = await sql<{ n: number }>`select count(*) as n from items`.execute(store.db);
    expect(count.rows[0]!.n).toBe(3);
    await runner.close();
    await expect(insert(['e'])).rejects.toThrow(/stopped/);
  } finally {
    await store.close();
  }
});
