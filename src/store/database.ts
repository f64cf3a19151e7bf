import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { CompiledQuery, Kysely, sql, SqliteDialect, SqliteDriver, type DatabaseConnection } from 'kysely';
import pg from 'pg';
import { AppError } from '../common/errors.ts';
import { maskUrl } from '../common/mask-url.ts';
import { TimeoutReportingPostgresDialect, type PostgresTimeouts } from './postgres-timeouts.ts';
import { createBusyRetry, sqliteBusyWaitMs } from './sqlite-busy.ts';
import type { Database } from './tables.ts';
import { storageError } from './storage-error.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Where the data lives, with any password masked. */
  location: string;
  close(): Promise<void>;
  /**
   * PostgreSQL only: runs `work` on a pooled client of its own, for what Kysely cannot express
   * (COPY … FROM STDIN). A client whose work threw is closed rather than reused.
   */
  withPgClient?<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
}

// PostgreSQL returns int8 (bigint) and numeric as strings; every id and time here fits in 2^53.
// Set on Herald's own pool (not pg's global registry): nothing runs at import time.
const int8Oid = 20;
const numericOid = 1700;
const asNumber = (value: string) => Number(value);
const postgresTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === int8Oid || oid === numericOid
      ? asNumber
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Where a database URL points, as shown to operators: the absolute SQLite path, or the URL with its password masked. */
export function databaseLocation(url: string): string {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    return path === ':memory:' ? path : resolve(path);
  }
  return maskUrl(url);
}

/** How long a statement waits for another connection's write lock before SQLITE_BUSY. */
export const sqliteBusyTimeoutMs = 5_000;

/**
 * Every SQLite connection's settings (the store's, and its worker threads' own connections).
 * WAL lets readers (CLI, dashboard) run while the MTA writes; NORMAL sync is durable across process
 * crashes (only an OS crash can lose the last transactions). 16 MB of page cache (the default is
 * 2 MB) holds the hot index pages; the rest comes from the OS page cache. Measured
 * (docs/performance.md): 32 MB sent no faster (100k messages, 7,390/7,697 vs 7,882/7,916 msgs/s) and
 * prepared 1M recipients no faster, for 16 MB more RSS, which has a budget. No mmap: mapped pages
 * count in the process's RSS. Temporary b-trees (a large GROUP BY or window sort, e.g. an import's
 * repeated addresses over 1M staged rows) spill to temporary files rather than memory: in memory that
 * one query added 45 MB to an import's peak RSS.
 */
export const sqlitePragmas: readonly string[] = [
  'journal_mode = WAL',
  'synchronous = NORMAL',
  `busy_timeout = ${sqliteBusyTimeoutMs}`,
  'cache_size = -16384',
  'foreign_keys = ON',
];

export interface OpenStoreOptions {
  poolSize?: number;
  /**
   * SQLite: create the database file when it does not exist (default true). False: DATABASE_NOT_FOUND
   * naming the path, so a read-only command run from the wrong directory never leaves an empty database.
   */
  create?: boolean;
  /** SQLite: create the file's missing folder (default true); false: DATABASE_NOT_WRITABLE naming it. */
  createDirectory?: boolean;
  /** PostgreSQL: longest wait for a connection, new or from the pool (default 30 s; database.connectTimeoutMs). */
  connectTimeoutMs?: number;
  /** SQLite: longest wait of the main connection for another connection's write lock (default 5 s). */
  sqliteBusyWaitMs?: number;
  /** PostgreSQL: longest wait for a lock, longest statement (database.lockTimeoutMs, statementTimeoutMs). */
  timeouts?: PostgresTimeouts;
}

/** The defaults of database.lockTimeoutMs and database.statementTimeoutMs. */
export const defaultPostgresTimeouts: PostgresTimeouts = { lockTimeoutMs: 60_000, statementTimeoutMs: 600_000 };

export function openStore(url: string, options: OpenStoreOptions = {}): Store {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // Not shown: it holds the password, and an unparseable one cannot be masked.
    if (!URL.canParse(url))
      throw new AppError(
        'DATABASE_URL_INVALID',
        'database.url (or HERALD_DATABASE_URL) is not a valid URL (not shown: it may hold the password): the form is postgres://USER:PASSWORD@HOST:PORT/DATABASE, the port a number, and a # / ? @ : % in the user or password percent-encoded (# as %23, / as %2F, @ as %40)',
      );
    return openPostgres(
      url,
      options.poolSize ?? 10,
      options.connectTimeoutMs ?? 30_000,
      options.timeouts ?? defaultPostgresTimeouts,
    );
  }
  if (url.startsWith('sqlite:')) return openSqlite(url.slice('sqlite:'.length), options);
  throw new AppError(
    'DATABASE_URL_INVALID',
    `database url must start with sqlite: or postgres:// (got ${maskUrl(url)})`,
  );
}

function openSqlite(path: string, options: OpenStoreOptions): Store {
  const file = path === ':memory:' ? path : resolve(path);
  if (file !== ':memory:' && !existsSync(file)) {
    if (options.create === false)
      throw new AppError(
        'DATABASE_NOT_FOUND',
        `no database at ${file}: this command never creates one (herald start, demo, import recipients and delivery create do); run it where the database is, or name it with --config or HERALD_DATABASE_URL`,
        { details: { database: file } },
      );
    if (!existsSync(dirname(file))) {
      if (options.createDirectory === false)
        throw new AppError(
          'DATABASE_NOT_WRITABLE',
          `cannot create the database ${file}: folder ${dirname(file)} does not exist (create it, or fix database.url)`,
          { details: { database: file } },
        );
      mkdirSync(dirname(file), { recursive: true });
    }
  }
  let sqlite: SqliteDatabase.Database | undefined;
  try {
    sqlite = new SqliteDatabase(file);
    for (const pragma of sqlitePragmas) sqlite.pragma(pragma);
    // Waits for other connections' locks are retried off the event loop (sqlite-busy.ts).
    sqlite.pragma('busy_timeout = 0');
  } catch (cause) {
    sqlite?.close();
    const damaged = storageError(cause, file);
    if (damaged?.code === 'DATABASE_CORRUPT') throw damaged;
    throw new AppError('DATABASE_NOT_WRITABLE', `cannot open the database ${file}: ${(cause as Error).message}`, {
      cause,
      details: { database: file },
    });
  }
  const db = new Kysely<Database>({
    dialect: new ImmediateSqliteDialect(
      { database: withStatementCache(sqlite) },
      file,
      options.sqliteBusyWaitMs ?? sqliteBusyWaitMs,
    ),
  });
  return {
    db,
    dialect: 'sqlite',
    location: file,
    close: () => db.destroy(),
  };
}

function openPostgres(url: string, poolSize: number, connectTimeoutMs: number, timeouts: PostgresTimeouts): Store {
  // A server that accepts the connection and never answers (a partition, a hung PostgreSQL) left
  // every command waiting with no output: now the wait for a connection ends (connectionError).
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types: postgresTypes,
    connectionTimeoutMillis: connectTimeoutMs,
    // Sent at connection start-up: every session of the pool has them (0 turns one off).
    lock_timeout: timeouts.lockTimeoutMs,
    statement_timeout: timeouts.statementTimeoutMs,
  });
  // An idle client whose server connection drops (PostgreSQL restart, failover, a terminated backend)
  // emits 'error' on the pool; unhandled, that would crash the process. The pool replaces the client
  // and the next query reports any real problem.
  pool.on('error', (error) => {
    process.emitWarning(`PostgreSQL idle connection lost: ${error.message}`, { code: 'HERALD_PG_IDLE' });
  });
  // A client checked out of the pool has no such listener (the pool removes it), and a server that
  // ends its connection between two queries (pg_terminate_backend, idle_in_transaction_session_timeout,
  // a PostgreSQL restart) sends a FATAL that the client emits as 'error' when no query is in flight:
  // unlistened, it ended the whole process. Nothing to do here: the client's next query fails and
  // its caller reports it, and the pool discards a client that is no longer queryable on release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  const db = new Kysely<Database>({
    dialect: new TimeoutReportingPostgresDialect({ pool }, timeouts, maskUrl(url)),
  });
  return {
    db,
    dialect: 'postgres',
    location: maskUrl(url),
    close: () => db.destroy(),
    async withPgClient(work) {
      const client = await pool.connect();
      try {
        const result = await work(client);
        client.release();
        return result;
      } catch (error) {
        client.release(true);
        throw error;
      }
    },
  };
}

// A deferred BEGIN takes the write lock at the first write: a transaction that reads first and then
// writes (the quarantine's lock-decide-write, claims) cannot wait for another connection's write (the
// tracking event writer's thread, another process) and fails at once with SQLITE_BUSY, whatever the
// busy timeout. BEGIN IMMEDIATE takes the write lock up front, where the retry waits for it. Every
// Kysely transaction on SQLite is a write transaction here, so all of them begin this way.
class ImmediateSqliteDriver extends SqliteDriver {
  readonly #retrying: (connection: DatabaseConnection) => DatabaseConnection;
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0], location: string, busyWaitMs: number) {
    super(config);
    this.#retrying = createBusyRetry(location, busyWaitMs);
  }
  override async acquireConnection(): Promise<DatabaseConnection> {
    return this.#retrying(await super.acquireConnection());
  }
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: ConstructorParameters<typeof SqliteDialect>[0];
  readonly #location: string;
  readonly #busyWaitMs: number;
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0], location: string, busyWaitMs: number) {
    super(config);
    this.#config = config;
    this.#location = location;
    this.#busyWaitMs = busyWaitMs;
  }
  override createDriver(): SqliteDriver {
    return new ImmediateSqliteDriver(this.#config, this.#location, this.#busyWaitMs);
  }
}

const statementCacheSize = 256;
// Statements up to 64 KB of SQL are kept (an import stages rows with a 1,000-row insert of about
// 30 KB, run a thousand times per million rows: preparing it each time cost 0.6 s), within 4 MB of
// SQL text in all, so statements built for one use (long IN lists) cannot grow the cache without bound.
const cacheableSqlLength = 65_536;
const cachedSqlBudget = 4 * 1024 * 1024;

/**
 * Kysely prepares every statement anew; on the MTA's hot path (claims, outcome writes) preparing costs
 * as much as running. Reuse prepared statements by SQL text (an LRU; a statement still being iterated
 * is never handed out twice).
 */
function withStatementCache(sqlite: SqliteDatabase.Database) {
  const cache = new Map<string, SqliteDatabase.Statement>();
  let cachedLength = 0;
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      const cached = cache.get(text);
      if (cached && !cached.busy) {
        cache.delete(text);
        cache.set(text, cached);
        return cached;
      }
      const statement = sqlite.prepare(text);
      if (text.length <= cacheableSqlLength && !cached) {
        cache.set(text, statement);
        cachedLength += text.length;
        while (cache.size > statementCacheSize || cachedLength > cachedSqlBudget) {
          const oldest = cache.keys().next().value!;
          cache.delete(oldest);
          cachedLength -= oldest.length;
        }
      }
      return statement;
    },
  };
}

/**
 * Runs `work` in one transaction, on a Store bound to it: every storage function given that store
 * runs inside the transaction. Commits when `work` resolves, rolls back when it throws. Areas use it
 * where one fact spans several storage functions (or a file write that must roll the rows back).
 * Inside, `withPgClient` still opens a connection of its own, outside the transaction.
 */
export function inTransaction<T>(store: Store, work: (store: Store) => Promise<T>): Promise<T> {
  return store.db.transaction().execute((trx) => work({ ...store, db: trx }));
}

/** Whether `error` is a unique index's violation, from either driver (PostgreSQL SQLSTATE 23505, SQLite's extended code). */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * An optimistic write: `attempt` (a plain insert, cheaper than one with ON CONFLICT), and `fallback`
 * (the one with ON CONFLICT) only when the attempt fails on a unique index. With `transaction` (the
 * store bound to the transaction they run in), the failed attempt is undone back to a savepoint first:
 * a failed statement would otherwise abort the whole transaction on PostgreSQL. With null, each
 * statement stands alone.
 */
export async function unlessUniqueViolation<T>(
  transaction: Store | null,
  attempt: () => Promise<T>,
  fallback: () => Promise<T>,
): Promise<T> {
  if (transaction) await sql`savepoint optimistic_write`.execute(transaction.db);
  try {
    const result = await attempt();
    if (transaction) await sql`release savepoint optimistic_write`.execute(transaction.db);
    return result;
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    if (transaction) await sql`rollback to savepoint optimistic_write`.execute(transaction.db);
    return fallback();
  }
}
