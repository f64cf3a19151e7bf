import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AppError } from '../common/errors.ts';
import { openStore, type Store } from '../store/database.ts';
import { sqliteIntegrityProblems, sqliteVacuumInto } from './maintenance-store.ts';

// `herald db backup FILE`: an online copy of a SQLite database, safe while every role runs (the
// `cp` of a live file is not: it misses the -wal file and can catch a page half written). Written
// under a temporary name and renamed once checked, so FILE is either a sound copy or absent.

export interface DatabaseBackup {
  file: string;
  bytes: number;
  seconds: number;
  /** quick_check of the copy found nothing. */
  checked: boolean;
}

export async function backupDatabase(store: Store, target: string): Promise<DatabaseBackup> {
  if (store.dialect !== 'sqlite')
    throw new AppError(
      'CLI_USAGE',
      'herald db backup copies a SQLite database; back PostgreSQL up with its own tools (pg_dump, or pg_basebackup with WAL archiving)',
    );
  const file = resolve(target);
  if (existsSync(file)) throw new AppError('CLI_USAGE', `${file} exists: name a new file (a backup never overwrites)`);
  if (!existsSync(dirname(file)))
    throw new AppError('CLI_USAGE', `cannot write ${file}: folder ${dirname(file)} does not exist`);
  const partial = `${file}.partial-${process.pid}`;
  const started = performance.now();
  try {
    await sqliteVacuumInto(store, partial);
    const copy = openStore(`sqlite:${partial}`, { create: false });
    let problems: string[];
    try {
      problems = await sqliteIntegrityProblems(copy, false, 10);
    } finally {
      await copy.close();
    }
    if (problems.length > 0)
      throw new AppError(
        'DATABASE_CORRUPT',
        `the copy of ${store.location} fails its check (${problems[0]}): the database itself is likely damaged; run herald db check`,
        { details: { database: store.location } },
      );
    renameSync(partial, file);
  } finally {
    for (const leftover of [partial, `${partial}-wal`, `${partial}-shm`]) rmSync(leftover, { force: true });
  }
  return {
    file,
    bytes: statSync(file).size,
    seconds: Math.round(performance.now() - started) / 1000,
    checked: true,
  };
}
