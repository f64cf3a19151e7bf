// Worker thread of sqlite-statement-runner.ts: its own connection to the SQLite file (the same
// pragmas as the store's), running each compiled statement it is sent and answering with the number
// of rows it changed, or the error's message and SQLite code. Plain JavaScript on purpose: it runs
// without a TypeScript loader, in production and under vitest.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, pragmas } = workerData;
const db = new Database(file);
for (const pragma of pragmas) db.pragma(pragma);

parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const { changes } = db.prepare(message.sql).run(...message.parameters);
    parentPort.postMessage({ id: message.id, changes });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: String(error?.message || error), code: error?.code });
  }
});
