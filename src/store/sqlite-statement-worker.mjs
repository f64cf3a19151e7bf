// Worker thread of sqlite-statement-runner.ts: its own connection to the SQLite file (the same
// pragmas as the store's). It runs what it is sent and answers with the rows each statement changed,
// or the error's message and SQLite code:
// - one statement: { id, sql, parameters } → { id, changes };
// - a transaction: { id, statements: [...] } → { id, changes: [...] }, all applied or none. Each entry
//   is a statement { sql, parameters, required } or packed rows { packed } to insert (packed-rows.mjs);
//   a `required` statement that changes no row rolls back the whole transaction, answered as
//   { id, rolledBack: true } (a guard such as "the import is still running");
// - a read on a snapshot: { id, beginRead: true } begins a read transaction and answers once its
//   snapshot is taken; the next message, { id, read: true, sql, parameters }, answers with the rows
//   of that snapshot, { id, rows }, and ends the transaction;
// - a checkpoint: { id, checkpoint: true } copies the WAL's committed pages into the database file
//   (PASSIVE: it never waits for, nor blocks, the other connection), so the writer whose commits
//   made them does not.
// Plain JavaScript on purpose: it runs without a TypeScript loader, in production and under vitest.
import { packedRowStatements } from './packed-rows.mjs';
import { answerMessages, openWorkerConnection } from './sqlite-worker-connection.mjs';

const db = openWorkerConnection();

// Statements are prepared once: the same texts come back batch after batch.
const prepared = new Map();
function prepare(sql) {
  let statement = prepared.get(sql);
  if (statement === undefined) {
    if (prepared.size >= 32) prepared.clear();
    statement = db.prepare(sql);
    prepared.set(sql, statement);
  }
  return statement;
}

class RolledBack extends Error {}

function runEntry({ sql, parameters, required, packed }) {
  if (packed) {
    let changes = 0;
    for (const statement of packedRowStatements(packed))
      changes += prepare(statement.sql).run(...statement.parameters).changes;
    return changes;
  }
  const { changes } = prepare(sql).run(...parameters);
  if (required && changes === 0) throw new RolledBack();
  return changes;
}

const runTransaction = db.transaction((statements) => statements.map(runEntry)).immediate;

function answer(message) {
  if (message.beginRead) {
    db.exec('begin');
    try {
      // The snapshot is taken at the transaction's first read of the file.
      prepare('select count(*) from sqlite_schema').get();
    } catch (error) {
      db.exec('rollback');
      throw error;
    }
    return { id: message.id };
  }
  if (message.read) {
    try {
      return { id: message.id, rows: prepare(message.sql).all(...message.parameters) };
    } finally {
      if (db.inTransaction) db.exec('commit');
    }
  }
  if (message.checkpoint) {
    db.pragma('wal_checkpoint(PASSIVE)');
    return { id: message.id };
  }
  if (message.statements) {
    try {
      return { id: message.id, changes: runTransaction(message.statements) };
    } catch (error) {
      if (error instanceof RolledBack) return { id: message.id, rolledBack: true };
      throw error;
    }
  }
  return { id: message.id, changes: prepare(message.sql).run(...message.parameters).changes };
}

answerMessages(db, answer);
