import { AppError, type ErrorCode } from '../common/errors.ts';
import type { Store } from './database.ts';

// A request that failed because the database is down, stuck or out of room is not a bug of the
// request nor of Herald: it left as `500 INTERNAL` ("a bug; the log has the details"), so a client
// had no cue to retry and the operator paged at 3 a.m. read "internal error" instead of "the database";
// and a DATABASE_* error's own message (written for the operator's terminal) went out whole in the
// body: the PostgreSQL URL (user, host, port, database) and the SQL of the query. Now such a failure
// is a 503 carrying the DATABASE_* code, a retry hint, and a detail without either; the log keeps all.

const databaseCodes: ReadonlySet<ErrorCode> = new Set([
  'DATABASE_UNREACHABLE',
  'DATABASE_AUTH_FAILED',
  'DATABASE_NOT_FOUND',
  'DATABASE_NOT_WRITABLE',
  'DATABASE_FULL',
  'DATABASE_CORRUPT',
  'DATABASE_BUSY',
  'DATABASE_LOCK_TIMEOUT',
  'DATABASE_STATEMENT_TIMEOUT',
]);

// Raw driver errors, PostgreSQL only (SQLite's are AppErrors already or not about reaching it). A
// socket error counts when it names the database's own host or port: the same codes from anything
// else (a CSV upload its client abandoned is an ECONNRESET "aborted"; Redis, a peer) are not the
// database's, and calling them so would send the operator to the wrong server.
const unreachableCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
// A connection lost under a query: PostgreSQL's SQLSTATE class 08 (connection exception), 57P01–57P03
// (shutting down, crashed, starting up), 53300 (too many connections); a reset or broken socket the
// driver was reading or writing; pg's and pg-pool's own words for a connection ended or not made.
const lostStates = new Set(['57P01', '57P02', '57P03', '53300']);
const lostWords = /Connection terminated|timeout exceeded when trying to connect/;

interface SocketError {
  code?: unknown;
  syscall?: unknown;
  port?: unknown;
  hostname?: unknown;
}

function namesDatabase(location: string, port: unknown, hostname: unknown): boolean {
  try {
    const database = new URL(location);
    return port === Number(database.port || 5432) || hostname === database.hostname;
  } catch {
    return false;
  }
}

/** The DATABASE_* code of a failure of the database itself, or undefined for any other error. */
export function databaseFailure(error: unknown, store: Pick<Store, 'dialect' | 'location'>): ErrorCode | undefined {
  if (error instanceof AppError) return databaseCodes.has(error.code) ? error.code : undefined;
  if (!(error instanceof Error) || store.dialect !== 'postgres') return undefined;
  const { code, syscall, port, hostname } = error as SocketError;
  if (typeof code === 'string' && (unreachableCodes.has(code) || syscall === 'connect'))
    return namesDatabase(store.location, port, hostname) ? 'DATABASE_UNREACHABLE' : undefined;
  if ((code === 'ECONNRESET' || code === 'EPIPE') && (syscall === 'read' || syscall === 'write'))
    return 'DATABASE_UNREACHABLE';
  if (typeof code === 'string' && (lostStates.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return 'DATABASE_UNREACHABLE';
  return lostWords.test(error.message) ? 'DATABASE_UNREACHABLE' : undefined;
}

const causes: Partial<Record<ErrorCode, string>> = {
  DATABASE_UNREACHABLE: 'it cannot be reached',
  DATABASE_BUSY: 'another connection holds it locked',
  DATABASE_LOCK_TIMEOUT: 'a lock another session holds did not come free in time',
  DATABASE_STATEMENT_TIMEOUT: 'a statement ran past database.statementTimeoutMs',
  DATABASE_FULL: 'it has no room left',
  DATABASE_NOT_WRITABLE: 'it is read-only',
};

/** What the client is told: the cause in a few words, no address, no SQL. */
export function databaseFailureDetail(code: ErrorCode): string {
  return `the database is unavailable (${causes[code] ?? code}): retry later; the server log has the details`;
}

/**
 * `work`, or DATABASE_UNREACHABLE once `ms` (when given) have passed without its answer. A partition (packets
 * vanish: no reset, no error) left a query on a pooled connection waiting for as long as the socket
 * lived, and the request with it; the query itself is left to finish or fail on its own.
 */
export function answerWithin<T>(work: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return work;
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new AppError('DATABASE_UNREACHABLE', `the database did not answer within ${ms} ms`)),
      ms,
    );
  });
  work.catch(() => undefined);
  return Promise.race([work, silence]).finally(() => clearTimeout(timer));
}
