import type { Dialect, Store } from '../store/database.ts';
import { storageError } from '../store/storage-error.ts';
import { postgresChecksums, sqliteIntegrityProblems } from './maintenance-store.ts';

// `herald db check`: is the database file sound? SQLite checks every page itself (quick_check, or
// integrity_check with --full); PostgreSQL checks its pages as it reads them when the cluster has
// data checksums, and counts the failures it met. Field names are a stable --json contract.

/** Problems listed at most (SQLite stops checking after this many). */
export const maxReportedProblems = 100;

export interface DatabaseCheck {
  dialect: Dialect;
  location: string;
  /** quick_check or integrity_check (SQLite), checksums (PostgreSQL). */
  method: 'quick_check' | 'integrity_check' | 'checksums';
  ok: boolean;
  /** What is damaged, in the database's own words; at most maxReportedProblems. */
  problems: string[];
  /** PostgreSQL: data checksums on (damage is then detected on read); null on SQLite. */
  dataChecksums: boolean | null;
  seconds: number;
}

export async function checkDatabase(store: Store, options: { full: boolean }): Promise<DatabaseCheck> {
  const started = performance.now();
  const base = { dialect: store.dialect, location: store.location };
  const seconds = () => Math.round(performance.now() - started) / 1000;
  if (store.dialect === 'sqlite') {
    const problems = await sqliteIntegrityProblems(store, options.full, maxReportedProblems).catch((error: unknown) => {
      // A table's or index's root page that cannot be read stops the check itself.
      if (storageError(error, store.location)?.code !== 'DATABASE_CORRUPT') throw error;
      return [`the check could not go on: ${(error as Error).message}`];
    });
    return {
      ...base,
      method: options.full ? 'integrity_check' : 'quick_check',
      ok: problems.length === 0,
      problems,
      dataChecksums: null,
      seconds: seconds(),
    };
  }
  const checksums = await postgresChecksums(store);
  const problems =
    checksums.failures > 0
      ? [`${checksums.failures} checksum failure(s) recorded in pg_stat_database for this database`]
      : [];
  return {
    ...base,
    method: 'checksums',
    ok: problems.length === 0,
    problems,
    dataChecksums: checksums.enabled,
    seconds: seconds(),
  };
}
