// Worker thread of sqlite-event-writer.ts: its own connection to the SQLite file (the store's
// pragmas), inserting each batch of raw tracking events (columns, see encodeBatch there) in one
// transaction. Plain JavaScript on purpose: it runs without a TypeScript loader, in production and
// under vitest.
import { workerData } from 'node:worker_threads';
import { answerMessages, openWorkerConnection } from '../store/sqlite-worker-connection.mjs';

const { kinds, columns, rowsPerStatement } = workerData;
const db = openWorkerConnection();

// Rows go in rowsPerStatement per statement (one bind and one statement step for many rows); the
// statement for a shorter tail is prepared once per length.
const statements = new Map();
function insertRows(rows) {
  let statement = statements.get(rows);
  if (!statement) {
    const tuple = '(?, ?, ?, ?, ?, ?, ?)';
    statement = db.prepare(
      `insert into tracking_events (delivery_id, log_id, kind, link_index, at, flags, user_agent) values ${new Array(rows).fill(tuple).join(', ')}`,
    );
    statements.set(rows, statement);
  }
  return statement;
}

const insertAll = db.transaction((count, values, agents) => {
  const parameters = [];
  for (let first = 0; first < count; first += rowsPerStatement) {
    const rows = Math.min(rowsPerStatement, count - first);
    parameters.length = 0;
    for (let i = first, at = first * columns; i < first + rows; i++, at += columns) {
      const link = values[at + 3];
      const agent = values[at + 6];
      parameters.push(
        values[at],
        values[at + 1],
        kinds[values[at + 2]],
        link < 0 ? null : link,
        values[at + 4],
        values[at + 5],
        agent < 0 ? null : agents[agent],
      );
    }
    insertRows(rows).run(parameters);
  }
});

answerMessages(db, (message) => {
  insertAll(message.count, new Float64Array(message.values), message.agents);
  return { id: message.id };
});
