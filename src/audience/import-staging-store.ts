import { CompiledQuery } from 'kysely';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { relaxCommitSql, renewImport, renewImportQuery } from './audience-store.ts';
import { inTransaction, type Dialect, type Store } from '../store/database.ts';

// The read phase of an import writes here: accepted rows to the import_rows staging table, rejected
// ones to import_rejects, batch by batch, each batch with the import's heartbeat.

export interface NewReject {
  line: number;
  reason: string;
  message: string;
  excerpt: string;
}

/**
 * The accepted rows of one batch, held in the form the store writes them in: bound parameters for
 * SQLite, COPY text for PostgreSQL. A million-row import adds a million rows: encoding each one as it
 * comes, rather than keeping an object per row until its batch is written, leaves the garbage
 * collector nothing to copy (those objects outlived a young-generation collection or two).
 */
export interface BatchRows {
  readonly count: number;
  /** `data`: the personalization data as JSON object text. */
  add(line: number, email: string, domain: string, data: string): void;
}

export function newBatchRows(store: Store, importId: number): BatchRows {
  return store.withPgClient ? new CopyRows(importId) : new ParameterRows(importId);
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
 */
export async function stageBatch(store: Store, importId: number, batch: StagedBatch): Promise<boolean> {
  const { rows } = batch;
  if (store.withPgClient && rows instanceof CopyRows)
    return store.withPgClient((client) => stageBatchPostgres(store, client, importId, rows, batch));
  if (!(rows instanceof ParameterRows)) throw new Error('batch rows made for another store');
  return inTransaction(store, async (trx) => {
    if (!(await renewImport(trx, importId, batch))) return false;
    const { parameters } = rows;
    for (let start = 0; start < parameters.length; start += rowsPerStatement * fieldsPerRow) {
      const chunk = parameters.slice(start, start + rowsPerStatement * fieldsPerRow);
      await trx.db.executeQuery(CompiledQuery.raw(stagingInsert(store.dialect, chunk.length / fieldsPerRow), chunk));
    }
    for (const chunk of chunks(batch.rejects, rowsPerStatement))
      await insertRejects(trx, importId, chunk, batch.now).execute();
    return true;
  });
}

// Bound parameters per statement stay far below SQLite's 32,766 and PostgreSQL's 65,535.
const rowsPerStatement = 1_000;
const fieldsPerRow = 5;

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

class ParameterRows implements BatchRows {
  readonly parameters: unknown[] = [];
  count = 0;
  constructor(private readonly importId: number) {}
  add(line: number, email: string, domain: string, data: string): void {
    this.parameters.push(this.importId, line, email, domain, data);
    this.count += 1;
  }
}

/**
 * The staging insert as SQL text, built once per row count: at a million rows, building and compiling
 * a 1,000-row query with the query builder costs more than SQLite takes to run it.
 */
const fullStagingSql = new Map<Dialect, string>();
function stagingInsert(dialect: Dialect, rows: number): string {
  const cached = rows === rowsPerStatement ? fullStagingSql.get(dialect) : undefined;
  if (cached !== undefined) return cached;
  let n = 0;
  const param = (): string => (dialect === 'postgres' ? `$${++n}` : '?');
  const tuples = Array.from({ length: rows }, () => `(${param()}, ${param()}, ${param()}, ${param()}, ${param()})`);
  const text = `insert into import_rows (import_id, line, email, domain, data) values ${tuples.join(', ')}`;
  if (rows === rowsPerStatement) fullStagingSql.set(dialect, text);
  return text;
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
class CopyRows implements BatchRows {
  count = 0;
  private buffer = Buffer.allocUnsafe(1 << 20);
  private length = 0;
  private readonly prefix: string;
  constructor(importId: number) {
    this.prefix = `${importId}\t`;
  }
  add(line: number, email: string, domain: string, data: string): void {
    const text = `${this.prefix}${line}\t${copyField(email)}\t${copyField(domain)}\t${copyField(data)}\n`;
    const room = text.length * 3; // UTF-8 bytes per UTF-16 unit, at most
    if (this.length + room > this.buffer.length) {
      const larger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + room));
      this.buffer.copy(larger, 0, 0, this.length);
      this.buffer = larger;
    }
    this.length += this.buffer.write(text, this.length);
    this.count += 1;
  }
  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
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
