import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { AppError } from '../common/errors.ts';
import { maskUrl } from '../common/logger.ts';
import type { Database } from './tables.ts';

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
pg.types.setTypeParser(20, (value) => Number(value));
pg.types.setTypeParser(1700, (value) => Number(value));

export function openStore(url: string, options: { poolSize?: number } = {}): Store {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return openPostgres(url, options.poolSize ?? 10);
  if (url.startsWith('sqlite:')) return openSqlite(url.slice('sqlite:'.length));
  throw new AppError('DATABASE_URL_INVALID', `database url must start with sqlite: or postgres:// (got ${maskUrl(url)})`);
}

function openSqlite(path: string): Store {
  const file = path === ':memory:' ? path : resolve(path);
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  // WAL lets readers (CLI, dashboard) run while the MTA writes; NORMAL sync is durable across
  // process crashes (only an OS crash can lose the last transactions).
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  // The hot tables' index pages should stay in memory: 32 MB of page cache (the default is 2 MB).
  // No mmap: mapped pages count in the process's RSS, which has a budget.
  sqlite.pragma('cache_size = -32768');
  sqlite.pragma('temp_store = MEMORY');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return {
    db,
    dialect: 'sqlite',
    location: file,
    close: () => db.destroy(),
  };
}

function openPostgres(url: string, poolSize: number): Store {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client whose server connection drops (PostgreSQL restart, failover, a terminated backend)
  // emits 'error' on the pool; unhandled, that would crash the process. The pool replaces the client
  // and the next query reports any real problem.
  pool.on('error', (error) => {
    process.emitWarning(`PostgreSQL idle connection lost: ${error.message}`, { code: 'HERALD_PG_IDLE' });
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
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

const statementCacheSize = 256;
const cacheableSqlLength = 8_192;

/**
 * Kysely prepares every statement anew; on the MTA's hot path (claims, outcome writes) preparing costs
 * as much as running. Reuse prepared statements by SQL text (an LRU of short statements; a statement
 * still being iterated is never handed out twice).
 */
function withStatementCache(sqlite: SqliteDatabase.Database) {
  const cache = new Map<string, SqliteDatabase.Statement>();
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
        if (cache.size > statementCacheSize) cache.delete(cache.keys().next().value!);
      }
      return statement;
    },
  };
}
