import { Worker } from 'node:worker_threads';
import type { RawEvent } from './event-log.ts';
import { sqlitePragmas } from '../store/database.ts';
import type { TrackingEventKind } from '../store/tables.ts';

// On SQLite the raw log's batches are written by a worker thread with its own connection to the
// database file: better-sqlite3 is synchronous, and a 1,000-event insert would otherwise stop the
// tracking server's event loop for milliseconds, several times a second under load. A batch
// crosses as columns: the numbers in one Float64Array whose memory is transferred (not copied), the
// user agents once each in a short string list. Building that costs the server's event loop far
// less than serializing the events; the worker inserts the rows in one transaction (atomic), 100
// rows per prepared statement (sqlite-event-worker.mjs). WAL mode lets the main connection keep reading; a write of either side
// waits for the other through busy_timeout.

export interface EventWriter {
  write(batch: readonly RawEvent[]): Promise<void>;
  close(): Promise<void>;
}

const kinds: readonly TrackingEventKind[] = ['open', 'click', 'mirror', 'unsubscribe'];
const kindCodes = new Map(kinds.map((kind, code) => [kind, code]));
/** Columns per event: delivery id, log id, kind code, link index (-1: none), at, flags, user agent index (-1: none). */
const columns = 7;
/** 700 bound values per statement, far below SQLite's 32,766. */
const rowsPerStatement = 100;

/** The batch as columns (see `columns`), each distinct user agent once. */
function encodeBatch(batch: readonly RawEvent[]): { values: Float64Array<ArrayBuffer>; agents: string[] } {
  const values = new Float64Array(new ArrayBuffer(batch.length * columns * Float64Array.BYTES_PER_ELEMENT));
  const agents: string[] = [];
  const agentIndexes = new Map<string, number>();
  let at = 0;
  for (const event of batch) {
    let agent = -1;
    if (event.userAgent !== null) {
      agent = agentIndexes.get(event.userAgent) ?? -1;
      if (agent < 0) {
        agent = agents.push(event.userAgent) - 1;
        agentIndexes.set(event.userAgent, agent);
      }
    }
    values[at] = event.deliveryId;
    values[at + 1] = event.logId;
    values[at + 2] = kindCodes.get(event.kind)!;
    values[at + 3] = event.linkIndex ?? -1;
    values[at + 4] = event.at;
    values[at + 5] = event.flags;
    values[at + 6] = agent;
    at += columns;
  }
  return { values, agents };
}

export function createSqliteEventWriter(file: string): EventWriter {
  const pending = new Map<number, { resolve(): void; reject(error: Error): void }>();
  let worker: Worker | undefined;
  let nextId = 1;

  function failAll(error: Error): void {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  }

  function started(): Worker {
    if (worker) return worker;
    const created = new Worker(new URL('./sqlite-event-worker.mjs', import.meta.url), {
      // The store's settings, with SQLite's default 2 MB page cache: the thread only appends.
      workerData: { file, kinds, columns, rowsPerStatement, pragmas: [...sqlitePragmas, 'cache_size = -2048'] },
    });
    created.on('message', (message: { id: number; error?: string }) => {
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(`writing tracking events: ${message.error}`));
      else waiter?.resolve();
    });
    created.on('error', (error) => failAll(error));
    // A worker that dies is replaced at the next batch; the event log retries the failed one.
    created.on('exit', (code) => {
      if (worker === created) worker = undefined;
      failAll(new Error(`tracking event writer stopped (exit code ${code})`));
    });
    worker = created;
    return created;
  }

  return {
    write(batch) {
      if (batch.length === 0) return Promise.resolve();
      const { values, agents } = encodeBatch(batch);
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        started().postMessage({ id, count: batch.length, values: values.buffer, agents }, [values.buffer]);
      });
    },
    async close() {
      const running = worker;
      if (!running) return;
      worker = undefined;
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.postMessage('close');
      await exited;
    },
  };
}
