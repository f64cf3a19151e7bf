import type { CompiledQuery, DatabaseConnection, QueryResult } from 'kysely';
import { AppError } from '../common/errors.ts';

// better-sqlite3 is synchronous: with busy_timeout, a statement on the main connection waiting for
// another connection's write lock (an import or a preparation writing from its worker thread,
// another herald process, a sqlite3 shell left in a transaction) spun inside SQLite for up to 5 s
// with the event loop stopped — every SMTP session, API request and tracking hit of the role froze
// meanwhile. The main connection now has busy_timeout 0: a statement refused with SQLITE_BUSY (it
// did nothing) is tried again after a timer, so the role keeps serving while it waits, and after
// `waitMs` it fails with DATABASE_BUSY naming the database instead of the bare "database is locked".

/** The main connection's longest wait for another connection's lock, as busy_timeout was. */
export const sqliteBusyWaitMs = 5_000;

/** Wraps the main connection (at each acquisition) so its statements wait out SQLITE_BUSY on timers. */
export function createBusyRetry(
  location: string,
  waitMs: number,
): (connection: DatabaseConnection) => DatabaseConnection {
  // Since when the lock has been found held, shared by every statement of the connection: once it has
  // been held for waitMs, each statement that finds it held fails at once (three bounces received
  // while another process holds the lock are each answered 451 after 5 s, not after 5, 10 and 15 s).
  let busySince: number | undefined;
  let busySeenAt = 0;
  const run = async <T>(attempt: () => Promise<T>): Promise<T> => {
    let delayMs = 2;
    for (;;) {
      try {
        const result = await attempt();
        busySince = undefined;
        return result;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'SQLITE_BUSY') throw error;
        const now = Date.now();
        // A lock last seen held longer ago than this may have been released and taken again: counted anew.
        if (busySince === undefined || now - busySeenAt > 1_000) busySince = now;
        busySeenAt = now;
        if (now - busySince >= waitMs)
          throw new AppError(
            'DATABASE_BUSY',
            `the database ${location} stayed locked by another connection for ${waitMs} ms (another herald process writing, \`herald db maintain --convert\`, a sqlite3 shell left in a transaction): find that process (\`fuser ${location}\`), let it finish or end it, then run the command again`,
            { cause: error, details: { database: location } },
          );
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        delayMs = Math.min(delayMs * 2, 50);
      }
    }
  };
  return (connection) => ({
    executeQuery: <R>(query: CompiledQuery): Promise<QueryResult<R>> => run(() => connection.executeQuery<R>(query)),
    // A stream is read as it goes: only its start can be retried, and reads do not wait for writers in WAL mode.
    streamQuery: <R>(query: CompiledQuery, chunkSize?: number) => connection.streamQuery<R>(query, chunkSize),
  });
}
