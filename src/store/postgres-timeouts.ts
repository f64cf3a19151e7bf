import { PostgresDialect, PostgresDriver, type CompiledQuery, type DatabaseConnection, type QueryResult } from 'kysely';
import { AppError } from '../common/errors.ts';

// A query hung behind a lock (an operator's LOCK TABLE, a VACUUM FULL, a transaction left open in
// psql) held its pooled connection for good: roles stalled one connection after another and logged
// nothing. PostgreSQL now ends such a wait (lock_timeout, SQLSTATE 55P03) or a statement that runs
// too long (statement_timeout, 57014), and the driver turns its bare "canceling statement due to …"
// into an error naming the setting, the query and what to look at.

export interface PostgresTimeouts {
  /** database.lockTimeoutMs: longest wait for a lock another session holds (0: no limit). */
  lockTimeoutMs: number;
  /** database.statementTimeoutMs: longest run of one statement (0: no limit). */
  statementTimeoutMs: number;
}

const lockNotAvailable = '55P03';
const queryCanceled = '57014';

/** The AppError a lock or statement timeout becomes, or undefined for any other error. */
export function postgresTimeoutError(
  error: unknown,
  timeouts: PostgresTimeouts,
  location: string,
  query: string,
): AppError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  const message = (error as Error | null)?.message ?? '';
  const statement = query.replace(/\s+/g, ' ').trim().slice(0, 160);
  if (code === lockNotAvailable && /lock timeout/.test(message))
    return new AppError(
      'DATABASE_LOCK_TIMEOUT',
      `a query on ${location} waited more than database.lockTimeoutMs (${timeouts.lockTimeoutMs} ms) for a lock another session holds (an operator's LOCK TABLE, a VACUUM FULL, a transaction left open): find the holder with \`SELECT pid, state, xact_start, query FROM pg_stat_activity WHERE pid IN (SELECT unnest(pg_blocking_pids(pid)) FROM pg_stat_activity)\`, end it (pg_terminate_backend) or let it finish; the query was: ${statement}`,
      { cause: error, details: { database: location, sqlState: code, query: statement } },
    );
  if (code === queryCanceled && /statement timeout/.test(message))
    return new AppError(
      'DATABASE_STATEMENT_TIMEOUT',
      `a statement on ${location} ran longer than database.statementTimeoutMs (${timeouts.statementTimeoutMs} ms) and was cancelled (a table missing its statistics or an index, an overloaded server): see \`herald db status\` and \`herald doctor\`; the statement was: ${statement}`,
      { cause: error, details: { database: location, sqlState: code, query: statement } },
    );
  return undefined;
}

/** Kysely's PostgreSQL dialect, with lock and statement timeouts reported by name. */
export class TimeoutReportingPostgresDialect extends PostgresDialect {
  readonly #config: ConstructorParameters<typeof PostgresDialect>[0];
  readonly #timeouts: PostgresTimeouts;
  readonly #location: string;
  constructor(config: ConstructorParameters<typeof PostgresDialect>[0], timeouts: PostgresTimeouts, location: string) {
    super(config);
    this.#config = config;
    this.#timeouts = timeouts;
    this.#location = location;
  }
  override createDriver(): PostgresDriver {
    return new TimeoutReportingDriver(this.#config, this.#timeouts, this.#location);
  }
}

/** Kysely's own connection class, which its driver releases (not exported by name). */
type PooledConnection = Parameters<PostgresDriver['releaseConnection']>[0];

class TimeoutReportingDriver extends PostgresDriver {
  readonly #timeouts: PostgresTimeouts;
  readonly #location: string;
  readonly #wrapped = new WeakMap<PooledConnection, DatabaseConnection>();
  readonly #inner = new WeakMap<DatabaseConnection, PooledConnection>();
  constructor(config: ConstructorParameters<typeof PostgresDialect>[0], timeouts: PostgresTimeouts, location: string) {
    super(config);
    this.#timeouts = timeouts;
    this.#location = location;
  }
  override async acquireConnection(): Promise<DatabaseConnection> {
    const connection = (await super.acquireConnection()) as PooledConnection;
    let wrapped = this.#wrapped.get(connection);
    if (!wrapped) {
      wrapped = this.#wrap(connection);
      this.#wrapped.set(connection, wrapped);
      this.#inner.set(wrapped, connection);
    }
    return wrapped;
  }
  override async releaseConnection(connection: PooledConnection): Promise<void> {
    await super.releaseConnection(this.#inner.get(connection) ?? connection);
  }
  #wrap(connection: DatabaseConnection): DatabaseConnection {
    const translate = (error: unknown, query: CompiledQuery): unknown =>
      postgresTimeoutError(error, this.#timeouts, this.#location, query.sql) ?? error;
    return {
      executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
        try {
          return await connection.executeQuery<R>(query);
        } catch (error) {
          throw translate(error, query);
        }
      },
      streamQuery: async function* <R>(query: CompiledQuery, chunkSize?: number) {
        try {
          yield* connection.streamQuery<R>(query, chunkSize);
        } catch (error) {
          throw translate(error, query);
        }
      },
    };
  }
}
