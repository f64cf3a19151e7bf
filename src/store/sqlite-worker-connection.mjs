// What the SQLite worker threads (sqlite-statement-worker.mjs, tracking/sqlite-event-worker.mjs)
// share: their own connection to the file, opened with the pragmas their creator passes (the store's,
// sqlitePragmas), and the message loop. 'close' closes the connection and ends the thread; any other
// message is answered with what `answer` returns (an object carrying the message's id), or, when it
// throws, with the error's message and SQLite code. Plain JavaScript: the workers run without a
// TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export function openWorkerConnection() {
  const db = new Database(workerData.file);
  for (const pragma of workerData.pragmas) db.pragma(pragma);
  return db;
}

export function answerMessages(db, answer) {
  parentPort.on('message', (message) => {
    if (message === 'close') {
      db.close();
      parentPort.close();
      return;
    }
    try {
      parentPort.postMessage(answer(message));
    } catch (error) {
      parentPort.postMessage({ id: message.id, error: String(error?.message || error), code: error?.code });
    }
  });
}
