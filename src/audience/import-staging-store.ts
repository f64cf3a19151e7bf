import { CompiledQuery } from 'kysely';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { relaxCommitSql, renewImportQuery } from './audience-store.ts';
import { inTransaction, type Store } from '../store/database.ts';
import { packedRowStatements, valueSeparator } from '../store/packed-rows.mjs';
import type { PackedRowsInsert, SqliteStatementRunner } from '../store/sqlite-statement-runner.ts';

// The read phase of an import writes here: accepted rows to the import_rows staging table, rejected
// ones to import_rejects, batch by batch, each batch with the import's heartbeat.

export interface NewReject {
  line: number;
  reason: string;
  message: string;
  excerpt: string;
}

/**
 * The accepted rows of one batch, held in the form the store writes them in: packed rows for SQLite
 * (store/packed-rows.mjs), COPY text for PostgreSQL, both as bytes outside the JavaScript heap. A
 * million-row import adds a million rows: encoding each one as it comes, rather than keeping an
 * object or five strings per row until its batch is written, leaves the garbage collector nothing to
 * copy (those outlived a young-generation collection or two).
 */
export interface BatchRows {
  readonly count: number;
  /** Bytes the rows take as written. */
  readonly size: number;
  /** `data`: the personalization data as JSON object text. */
  add(line: number, email: string, domain: string, data: string): void;
}

export function newBatchRows(store: Store, importId: number): BatchRows {
  return store.withPgClient ? new CopyRows(importId) : new PackedRows();
}

export interface StagedBatch {
  rows: BatchRows;
  rejects: NewReject[];
  /** The import's running totals, recorded with the batch as its heartbeat. */
  read: number;
  rejected: number;
  now: number;
}

/**
 * Stages one batch of an import in one transaction: its accepted rows, its rejects and the import's
 * heartbeat (renewImport). False, with nothing written, when the import is no longer running.
 * SQLite: on `runner`'s thread when one is given, so the caller parses the next batch meanwhile.
 */
export async function stageBatch(
  store: Store,
  importId: number,
  batch: StagedBatch,
  runner?: SqliteStatementRunner,
): Promise<boolean> {
  const { rows } = batch;
  if (store.withPgClient && rows instanceof CopyRows)
    return store
      .withPgClient((client) => stageBatchPostgres(store, client, importId, rows, batch))
      .finally(() => rows.release());
  if (!(rows instanceof PackedRows)) throw new Error('batch rows made for another store');
  const renew = renewImportQuery(store, importId, batch).compile();
  const packed: PackedRowsInsert = {
    into: 'insert into import_rows (import_id, line, email, domain, data)',
    constants: [importId],
    fields: 4,
    bytes: rows.bytes(),
    perStatement: rowsPerStatement,
  };
  const rejects = [...chunks(batch.rejects, rowsPerStatement)].map((chunk) =>
    insertRejects(store, importId, chunk, batch.now).compile(),
  );
  if (runner) {
    const changes = runner.transaction([
      { query: renew, required: true },
      { packed },
      ...rejects.map((query) => ({ query })),
    ]);
    rows.release(); // the bytes were copied to the worker when the transaction was sent
    return (await changes) !== undefined;
  }
  // An in-memory database has no second connection: the main thread writes.
  return inTransaction(store, async (trx) => {
    if (Number((await trx.db.executeQuery(renew)).numAffectedRows ?? 0) !== 1) return false;
    for (const { sql, parameters } of packedRowStatements(packed))
      await trx.db.executeQuery(CompiledQuery.raw(sql, parameters));
    for (const query of rejects) await trx.db.executeQuery(query);
    return true;
  }).finally(() => rows.release());
}

// Bound parameters per statement stay far below SQLite's 32,766 and PostgreSQL's 65,535.
const rowsPerStatement = 1_000;

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/**
 * Buffers of written batches, for the next ones: a batch's megabyte, freed only once the collector
 * gets to its small Buffer object, held 40–50 MB outside the heap at the peak of a million-row import.
 */
const spareBuffers: Buffer[] = [];

/**
 * Rows encoded as text, one after the other, into a buffer that grows as needed (UTF-8); `release`
 * gives the buffer to the next batch.
 */
abstract class EncodedRows implements BatchRows {
  count = 0;
  private buffer = spareBuffers.pop() ?? Buffer.allocUnsafe(1 << 20);
  private length = 0;
  abstract add(line: number, email: string, domain: string, data: string): void;
  protected append(row: string): void {
    const room = row.length * 3; // UTF-8 bytes per UTF-16 unit, at most
    if (this.length + room > this.buffer.length) {
      const larger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + room));
      this.buffer.copy(larger, 0, 0, this.length);
      this.buffer = larger;
    }
    this.length += this.buffer.write(row, this.length);
    this.count += 1;
  }
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
  get size(): number {
    return this.length;
  }
  release(): void {
    if (spareBuffers.length < 4) spareBuffers.push(this.buffer);
    this.buffer = Buffer.alloc(0);
    this.length = 0;
  }
}

/** SQLite: line, email, domain and data of each row, packed (none of them holds a NUL: JSON escapes it, and addresses never have one). */
class PackedRows extends EncodedRows {
  add(line: number, email: string, domain: string, data: string): void {
    if (email.includes(valueSeparator) || data.includes(valueSeparator))
      throw new Error(`line ${line}: a NUL character in a staged value`);
    const separator = this.count === 0 ? '' : valueSeparator;
    this.append(`${separator}${line}${valueSeparator}${email}${valueSeparator}${domain}${valueSeparator}${data}`);
  }
}

function insertRejects(store: Store, importId: number, rejects: NewReject[], now: number) {
  return store.db.insertInto('import_rejects').values(
    rejects.map((reject) => ({
      import_id: importId,
      line: reject.line,
      reason: reject.reason,
      message: reject.message,
      excerpt: reject.excerpt,
      created_at: now,
    })),
  );
}

// PostgreSQL stages with COPY … FROM STDIN on a client of its own: the server parses tab-separated text
// instead of bound parameters, and Herald sends bytes it wrote as rows came instead of five escaped
// arrays (at 1M rows: half the client CPU and a third less server CPU than one `unnest` insert per
// batch). The other statements of the transaction are built with Kysely and sent on the same client.
// A failure anywhere discards the client, and with it the open transaction.
async function stageBatchPostgres(
  store: Store,
  client: PoolClient,
  importId: number,
  rows: CopyRows,
  batch: StagedBatch,
): Promise<boolean> {
  const run = (query: CompiledQuery) => client.query(query.sql, [...query.parameters]);
  await client.query('begin');
  await client.query(relaxCommitSql);
  const renewed = await run(renewImportQuery(store, importId, batch).compile());
  if (renewed.rowCount !== 1) {
    await client.query('rollback');
    return false;
  }
  if (rows.count > 0)
    await copyIn(client, 'copy import_rows (import_id, line, email, domain, data) from stdin', rows.bytes());
  for (const chunk of chunks(batch.rejects, rowsPerStatement))
    await run(insertRejects(store, importId, chunk, batch.now).compile());
  await client.query('commit');
  return true;
}

/** COPY text format: one line per row, a tab between fields; backslash, tab, LF and CR escaped. */
class CopyRows extends EncodedRows {
  private readonly prefix: string;
  constructor(importId: number) {
    super();
    this.prefix = `${importId}\t`;
  }
  add(line: number, email: string, domain: string, data: string): void {
    this.append(`${this.prefix}${line}\t${copyField(email)}\t${copyField(domain)}\t${copyField(data)}\n`);
  }
}

const copySpecial = /[\\\t\n\r]/;
const copySpecials = /[\\\t\n\r]/g;
const copyEscapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function copyField(value: string): string {
  return copySpecial.test(value) ? value.replace(copySpecials, (c) => copyEscapes[c] as string) : value;
}

function copyIn(client: PoolClient, statement: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(statement));
    // 'finish' comes once the server has confirmed the COPY.
    stream.on('finish', resolve);
    stream.on('error', reject);
    stream.end(bytes);
  });
}
