import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { RawEvent } from './event-log.ts';

// On SQLite the raw log's batches are written by a worker thread with its own connection to the
// database file: better-sqlite3 is synchronous, and a 1,000-event insert (three B-trees) would
// otherwise stop the tracking server's event loop for milliseconds, several times a second under
// load. The batch crosses as one JSON string and goes in with one INSERT … SELECT FROM json_each
// (one statement: atomic, prepared once). WAL mode lets the main connection keep reading; a write
// of either side waits for the other through busy_timeout.

export interface EventWriter {
  write(batch: readonly RawEvent[]): Promise<void>;
  close(): Promise<void>;
}

// Plain CommonJS, run with `eval`: it needs no TypeScript loader, in production or under vitest.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 5000');
const insert = db.prepare(
  'insert into tracking_events (delivery_id, log_id, kind, link_index, at, flags, user_agent) ' +
  "select value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6 from json_each(?)"
);
parentPort.on('message', (message) => {
  if (message === 'close') { db.close(); parentPort.close(); return; }
  try {
    insert.run(message.json);
    parentPort.postMessage({ id: message.id });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: String((error && error.message) || error) });
  }
});
`;

export function createSqliteEventWriter(file: string): EventWriter {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const pending = new Map<number, { resolve(): void; reject(error: Error): void }>();
  let worker: Worker | undefined;
  let nextId = 1;

  function failAll(error: Error): void {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  }

  function started(): Worker {
    if (worker) return worker;
    const created = new Worker(workerSource, { eval: true, workerData: { file, driver } });
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
      const json = JSON.stringify(batch.map((e) => [e.deliveryId, e.logId, e.kind, e.linkIndex, e.at, e.flags, e.userAgent]));
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        started().postMessage({ id, json });
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
