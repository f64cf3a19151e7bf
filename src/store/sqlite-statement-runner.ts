import { Worker } from 'node:worker_threads';
import type { CompiledQuery } from 'kysely';
import { sqlitePragmas } from './database.ts';

// Runs write statements on a SQLite file from a worker thread with its own connection, so the main
// thread keeps working while SQLite writes (better-sqlite3 is synchronous: on the main connection a
// long statement stops everything else). Preparation uses it to insert one batch of delivery logs
// while it reads and checks the next (docs/performance.md). WAL mode lets the main connection read
// meanwhile; a write of either side waits for the other through busy_timeout.

export interface SqliteStatementRunner {
  /** Runs the statement; resolves with the number of rows it changed, rejects with SQLite's error and code. */
  run(query: CompiledQuery): Promise<number>;
  /** Closes the worker's connection and ends the worker. */
  close(): Promise<void>;
}

export function createSqliteStatementRunner(file: string): SqliteStatementRunner {
  const pending = new Map<number, { resolve(changes: number): void; reject(error: Error): void }>();
  const worker = new Worker(new URL('./sqlite-statement-worker.mjs', import.meta.url), {
    // A small page cache (2 MB, SQLite's default): a preparation's inserts ran as fast with 8 MB as
    // with 64 (docs/performance.md), and the process's RSS has a budget. The thread itself allocates
    // little: compiled statements and their parameters.
    workerData: { file, pragmas: [...sqlitePragmas, 'cache_size = -2048'] },
    resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
  });
  // The process may end while the worker is idle; never while a statement is on its way.
  worker.unref();
  let nextId = 1;
  let stopped: Error | undefined;
  const failAll = (error: Error) => {
    stopped = error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  worker.on('message', (message: { id: number; changes?: number; error?: string; code?: string }) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (pending.size === 0) worker.unref();
    if (message.error === undefined) waiter?.resolve(message.changes ?? 0);
    else waiter?.reject(Object.assign(new Error(message.error), { code: message.code }));
  });
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`SQLite statement worker stopped (exit code ${code})`)));
  return {
    run(query) {
      if (stopped) return Promise.reject(stopped);
      const id = nextId++;
      return new Promise<number>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.ref();
        worker.postMessage({ id, sql: query.sql, parameters: query.parameters });
      });
    },
    async close() {
      if (stopped) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.ref();
      worker.postMessage('close');
      await exited;
    },
  };
}
