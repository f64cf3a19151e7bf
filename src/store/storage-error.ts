import { AppError } from '../common/errors.ts';

// A write refused because the database has no room or became read-only while a command ran, or a
// read that found the file damaged: the bare driver message ("database or disk is full", "database
// disk image is malformed") names neither the database nor what to do.

const fullCodes = new Set(['SQLITE_FULL', '53100']); // 53100: PostgreSQL disk_full
// XX001 data_corrupted, XX002 index_corrupted: PostgreSQL found a damaged page.
const corruptCodes = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'XX001', 'XX002']);
const readOnlyCodes = new Set(['SQLITE_READONLY', 'SQLITE_READONLY_DBMOVED', '25006']); // 25006: read_only_sql_transaction

/** The AppError an out-of-space, read-only or damaged-file failure becomes, or undefined for any other error. */
export function storageError(error: unknown, location: string): AppError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  const message = (error as Error).message;
  if (fullCodes.has(code))
    return new AppError(
      'DATABASE_FULL',
      `the database ${location} has no room left (${message}): free space on its disk (\`herald db status\` shows what takes room), then run the command again; what this command had not committed was rolled back`,
      { cause: error, details: { database: location } },
    );
  if (corruptCodes.has(code))
    return new AppError(
      'DATABASE_CORRUPT',
      `the database ${location} is damaged (${message}): stop every Herald process using it and keep a copy of it as it is, then restore the last backup, or recover what can be read into a new file (docs/database.md, "A damaged SQLite file"); \`herald db check\` says whether a file is sound`,
      { cause: error, details: { database: location } },
    );
  if (readOnlyCodes.has(code))
    return new AppError(
      'DATABASE_NOT_WRITABLE',
      `the database ${location} became read-only while this command ran (${message}): make it writable again (file permissions, a remounted disk, a PostgreSQL standby), then run the command again`,
      { cause: error, details: { database: location } },
    );
  return undefined;
}
