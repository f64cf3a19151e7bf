import { Worker } from 'node:worker_threads';
import type { CompiledQuery } from 'kysely';
import { sqlitePragmas, type Store } from './database.ts';

// Runs write statements on a SQLite file from a worker thread with its own connection, so the main
// thread keeps working while SQLite writes (better-sqlite3 is synchronous: on the main connection a
// long statement stops everything else). Preparation uses it to insert one batch of delivery logs
// while it reads and checks the next, an import to stage one batch of rows while it parses the next
// (docs/performance.md). WAL mode lets the main connection read meanwhile; a write of either side
// waits for the other through busy_timeout.

export interface SqliteStatementRunner {
  /** Runs the statement; resolves with the number of rows it changed, rejects with SQLite's error and code. */
  run(query: CompiledQuery): Promise<number>;
  /**
   * Runs the statements in one transaction; resolves with the rows each one changed, or with
   * undefined, nothing written, when a `required` statement changed no row.
   */
  transaction(statements: ReadonlyArray<TransactionEntry>): Promise<number[] | undefined>;
  /**
   * Copies the WAL's committed pages into the database file (a passive checkpoint) on the worker's
   * thread: a writer on the main connection calls it after its commits, and finds the work done
   * instead of doing it at its next commit.
   */
  checkpoint(): Promise<void>;
  /**
   * Reads on a snapshot of the database taken now: resolves once the worker has taken it, with the
   * rows to come. Writes committed afterwards, on any connection, are not in them, so the caller may
   * go on writing while the worker reads. The worker does nothing else until the rows are read.
   */
  readSnapshot<R>(query: CompiledQuery<R>): Promise<{ rows: Promise<R[]> }>;
  /** Closes the worker's connection and ends the worker. */
  close(): Promise<void>;
}

/** Packed rows to insert (packed-rows.mjs). */
export interface PackedRowsInsert {
  /** "insert into t (a, b, c)": the table and columns, constants first. */
  into: string;
  /** Bound first in every row (an import's id). */
  constants: unknown[];
  /** Values per row in `bytes`. */
  fields: number;
  /** The rows' values, UTF-8, separated by NUL. */
  bytes: Uint8Array;
  perStatement: number;
}

export type TransactionEntry = { query: CompiledQuery; required?: boolean } | { packed: PackedRowsInsert };

/** The worker's answer (sqlite-statement-worker.mjs). */
interface Answer {
  changes?: number | number[];
  rolledBack?: boolean;
  rows?: unknown[];
}

export function createSqliteStatementRunner(file: string): SqliteStatementRunner {
  const pending = new Map<number, { resolve(answer: Answer): void; reject(error: Error): void }>();
  const worker = new Worker(new URL('./sqlite-statement-worker.mjs', import.meta.url), {
    // A small page cache (2 MB, SQLite's default): a preparation's inserts ran as fast with 8 MB as
    // with 64 (docs/performance.md), and the process's RSS has a budget. The thread itself allocates
    // little: compiled statements and their parameters.
    workerData: { file, pragmas: [...sqlitePragmas, 'cache_size = -2048'] },
    resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
  });
  // The process may end while the worker is idle; never while a statement is on its way, nor before
  // the worker has closed its connection once asked to.
  worker.unref();
  let closing = false;
  let nextId = 1;
  let stopped: Error | undefined;
  const failAll = (error: Error) => {
    stopped = error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  worker.on('message', (message: Answer & { id: number; error?: string; code?: string }) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (pending.size === 0 && !closing) worker.unref();
    if (message.error === undefined) waiter?.resolve(message);
    else waiter?.reject(Object.assign(new Error(message.error), { code: message.code }));
  });
  const send = (message: object): Promise<Answer> => {
    if (stopped) return Promise.reject(stopped);
    const id = nextId++;
    return new Promise<Answer>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, ...message });
    });
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`SQLite statement worker stopped (exit code ${code})`)));
  return {
    async run(query) {
      const { changes } = await send({ sql: query.sql, parameters: query.parameters });
      return typeof changes === 'number' ? changes : 0;
    },
    async transaction(statements) {
      const answer = await send({
        statements: statements.map((entry) =>
          'packed' in entry
            ? { packed: entry.packed }
            : { sql: entry.query.sql, parameters: entry.query.parameters, required: entry.required ?? false },
        ),
      });
      return answer.rolledBack ? undefined : (answer.changes as number[]);
    },
    async checkpoint() {
      await send({ checkpoint: true });
    },
    async readSnapshot<R>(query: CompiledQuery<R>) {
      await send({ beginRead: true });
      const read = send({ read: true, sql: query.sql, parameters: query.parameters });
      return { rows: read.then((answer) => (answer.rows ?? []) as R[]) };
    },
    async close() {
      if (stopped) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      closing = true;
      worker.ref();
      worker.postMessage('close');
      await exited;
    },
  };
}

/**
 * A runner for `store` started when first asked for, or none: PostgreSQL has no use for it, and an
 * in-memory SQLite database is one connection's own. `close` ends the runner if one was started.
 */
export function lazySqliteStatementRunner(store: Store): {
  get(): SqliteStatementRunner | undefined;
  close(): Promise<void>;
} {
  let runner: SqliteStatementRunner | undefined;
  return {
    get() {
      if (store.dialect !== 'sqlite' || store.location === ':memory:') return undefined;
      runner ??= createSqliteStatementRunner(store.location);
      return runner;
    },
    async close() {
      await runner?.close();
      runner = undefined;
    },
  };
}
