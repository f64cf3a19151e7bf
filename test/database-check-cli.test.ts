import { closeSync, mkdtempSync, openSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { DatabaseBackup } from '../src/workflows/db-backup.ts';
import type { DatabaseCheck } from '../src/workflows/db-check.ts';
import { runHerald } from './support/cli.ts';
import { postgresUnavailable } from './support/databases.ts';
import { createScratchDatabase } from './support/scratch-database.ts';

// A damaged SQLite file (a disk that lost writes, a copy taken while Herald wrote) says so: every
// command names it DATABASE_CORRUPT with what to do, not "not writable" or a bare driver message,
// `herald db check` finds damage before a command trips on it, and `herald db backup` takes the copy
// to come back to while Herald runs.

/** A SQLite database holding one imported list of 2,000 recipients; its URL and file. */
async function sqliteWithRecipients(): Promise<{ url: string; file: string; drop: () => Promise<void> }> {
  const database = await createScratchDatabase('sqlite');
  const csv = join(mkdtempSync(join(tmpdir(), 'herald-check-')), 'r.csv');
  writeFileSync(
    csv,
    `email,first_name\n${Array.from({ length: 2_000 }, (_, i) => `r${i}@example.com,N${i}`).join('\n')}\n`,
  );
  const imported = await runHerald(database.url, ['import', 'recipients', csv, '--list', 'spring']);
  expect(imported.exitCode).toBe(0);
  return { ...database, file: database.url.slice('sqlite:'.length) };
}

/** Overwrites the first page of `object` (a table or index) with bytes no b-tree page starts with. */
function damagePageOf(file: string, object: string): void {
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma('wal_checkpoint(TRUNCATE)');
  const pageSize = Number(sqlite.pragma('page_size', { simple: true }));
  const row = sqlite.prepare('select rootpage from sqlite_schema where name = ?').get(object) as { rootpage: number };
  sqlite.close();
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (row.rootpage - 1) * pageSize);
  closeSync(fd);
}

describe('a damaged SQLite database', () => {
  it('db check: sound, then the damaged page named, exit 1; reading it is DATABASE_CORRUPT', async () => {
    const database = await sqliteWithRecipients();
    try {
      const sound = await runHerald(database.url, ['db', 'check', '--json']);
      expect(sound.exitCode).toBe(0);
      expect(sound.json<DatabaseCheck>()[0]).toMatchObject({
        dialect: 'sqlite',
        method: 'quick_check',
        ok: true,
        problems: [],
      });

      damagePageOf(database.file, 'lists');
      const damaged = await runHerald(database.url, ['db', 'check', '--full', '--json']);
      expect(damaged.exitCode).toBe(1);
      const check = damaged.json<DatabaseCheck>()[0]!;
      expect(check).toMatchObject({ method: 'integrity_check', ok: false });
      expect(check.problems.length).toBeGreaterThan(0);
      const human = await runHerald(database.url, ['db', 'check']);
      expect(human.stdout.join('\n')).toMatch(/DAMAGED \(\d+ problems? listed\)/);

      const lists = await runHerald(database.url, ['lists', '--json']);
      expect(lists.exitCode).toBe(1);
      expect(lists.json<{ error: Record<string, unknown> }>()[0]?.error).toMatchObject({
        code: 'DATABASE_CORRUPT',
        database: database.file,
      });
      expect(lists.stderr.join('\n')).toContain('herald db check');
    } finally {
      await database.drop();
    }
  });

  it('a file that is no database at all is DATABASE_CORRUPT when opened, not DATABASE_NOT_WRITABLE', async () => {
    const database = await sqliteWithRecipients();
    try {
      const fd = openSync(database.file, 'r+');
      writeSync(fd, Buffer.from('this is not a SQLite header!'), 0, 28, 0);
      closeSync(fd);
      const run = await runHerald(database.url, ['doctor', '--json']);
      expect(run.exitCode).toBe(1);
      expect(run.json<{ error: Record<string, unknown> }>()[0]?.error).toMatchObject({ code: 'DATABASE_CORRUPT' });
      expect(run.stderr.join('\n')).toContain('keep a copy of it as it is');
    } finally {
      await database.drop();
    }
  });
});

describe('db backup', () => {
  it('copies a SQLite database to a new file that holds the same data, and never overwrites', async () => {
    const database = await sqliteWithRecipients();
    const folder = mkdtempSync(join(tmpdir(), 'herald-backup-'));
    const target = join(folder, 'copy.db');
    try {
      const run = await runHerald(database.url, ['db', 'backup', target, '--json']);
      expect(run.exitCode).toBe(0);
      expect(run.json<DatabaseBackup>()[0]).toMatchObject({ file: target, checked: true });
      expect(readdirSync(folder)).toEqual(['copy.db']);
      const lists = await runHerald(`sqlite:${target}`, ['lists', '--json']);
      expect(lists.json()).toMatchObject([{ name: 'spring', recipients: 2_000 }]);
      const again = await runHerald(database.url, ['db', 'backup', target, '--json']);
      expect(again.exitCode).toBe(1);
      expect(again.json<{ error: { code: string; message: string } }>()[0]?.error.message).toContain(
        'never overwrites',
      );
    } finally {
      await database.drop();
    }
  });
});

describe.skipIf(postgresUnavailable !== undefined)('db check and backup on PostgreSQL', () => {
  it('db backup names the PostgreSQL tools instead', async () => {
    const database = await createScratchDatabase('postgres');
    try {
      const run = await runHerald(database.url, ['db', 'backup', join(tmpdir(), 'never.db')]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr.join('\n')).toContain('pg_dump');
    } finally {
      await database.drop();
    }
  });

  it('reports data checksums and the failures recorded', async () => {
    const database = await createScratchDatabase('postgres');
    try {
      const run = await runHerald(database.url, ['db', 'check', '--json']);
      expect(run.exitCode).toBe(0);
      const check = run.json<DatabaseCheck>()[0]!;
      expect(check).toMatchObject({ dialect: 'postgres', method: 'checksums', ok: true, problems: [] });
      expect(typeof check.dataChecksums).toBe('boolean');
    } finally {
      await database.drop();
    }
  });
});
