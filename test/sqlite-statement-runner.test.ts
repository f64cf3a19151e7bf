import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
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

it('runs a transaction whole or not at all, with packed rows and a required guard', async () => {
  const store = openStore(`sqlite:${join(dir, 'transactions.db')}`);
  const runner = createSqliteStatementRunner(store.location);
  try {
    await sql`create table items (id integer primary key, name text not null unique, tag text)`.execute(store.db);
    const insert = (name: string) => ({ query: sql`insert into items (name) values (${name})`.compile(store.db) });
    const packed = (names: string[]) => ({
      packed: {
        into: 'insert into items (tag, name)',
        constants: ['packed'],
        fields: 1,
        bytes: Buffer.from(names.join('\0')),
        perStatement: 2,
      },
    });
    // Three packed rows in two statements, their changes summed.
    expect(await runner.transaction([insert('a'), packed(['b', 'c', 'd'])])).toEqual([1, 3]);
    const guard = { query: sql`update items set tag = 'seen' where name = 'nobody'`.compile(store.db), required: true };
    expect(await runner.transaction([insert('e'), guard])).toBeUndefined();
    await expect(runner.transaction([insert('f'), packed(['g', 'a'])])).rejects.toMatchObject({
      code: 'SQLITE_CONSTRAINT_UNIQUE',
    });
    const rows = await sql<{ name: string; tag: string | null }>`select name, tag from items order by id`.execute(
      store.db,
    );
    expect(rows.rows).toEqual([
      { name: 'a', tag: null },
      { name: 'b', tag: 'packed' },
      { name: 'c', tag: 'packed' },
      { name: 'd', tag: 'packed' },
    ]);
  } finally {
    await runner.close();
    await store.close();
  }
});

it('reads on a snapshot while the main connection writes, and checkpoints the WAL into the file', async () => {
  const file = join(dir, 'snapshot.db');
  const store = openStore(`sqlite:${file}`);
  const runner = createSqliteStatementRunner(store.location);
  try {
    await sql`create table items (id integer primary key, name text not null)`.execute(store.db);
    await sql`insert into items (name) values ('a'), ('b')`.execute(store.db);
    const { rows } = await runner.readSnapshot(
      sql<{ name: string }>`select name from items order by id`.compile(store.db),
    );
    await sql`insert into items (name) values ('c')`.execute(store.db);
    await sql`delete from items where name = 'a'`.execute(store.db);
    expect((await rows).map((row) => row.name)).toEqual(['a', 'b']);
    // Until a checkpoint the pages are in the WAL only; after it, in the database file.
    const before = statSync(file).size;
    await runner.checkpoint();
    expect(statSync(file).size).toBeGreaterThan(before);
  } finally {
    await runner.close();
    await store.close();
  }
});

it('keeps the process alive until its worker has closed, with a checkpoint still on its way', () => {
  const runnerModule = pathToFileURL(join(import.meta.dirname, '../src/store/sqlite-statement-runner.ts')).href;
  const script = `
    const { createSqliteStatementRunner } = await import(${JSON.stringify(runnerModule)});
    const runner = createSqliteStatementRunner(${JSON.stringify(join(dir, 'exit.db'))});
    await runner.run({ sql: 'create table items (id integer primary key)', parameters: [] });
    runner.checkpoint();
    await runner.close();
    console.log('closed');`;
  const scriptFile = join(dir, 'close-on-exit.mjs');
  writeFileSync(scriptFile, script);
  const output = execFileSync(process.execPath, ['--import', 'tsx', scriptFile], { encoding: 'utf8' });
  expect(output.trim()).toBe('closed');
});
