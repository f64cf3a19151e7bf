import { CompiledQuery, sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from './database.ts';
import type { Database, ImportRejectTable, ImportTable, ListTable } from './tables.ts';

// Queries of the audience import: lists, imports, their staged rows and rejects.
// Every function takes the Kysely instance (or a transaction) it runs on.

type Db = Kysely<Database>;

export interface StagedRow {
  line: number;
  email: string;
  domain: string;
  /** JSON object text. */
  data: string;
}

export interface NewReject {
  line: number;
  reason: string;
  message: string;
  excerpt: string;
}

// Bound parameters per statement stay far below SQLite's 32,766 and PostgreSQL's 65,535.
const rowsPerStatement = 1_000;

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

export async function findList(db: Db, name: string): Promise<Selectable<ListTable> | undefined> {
  return db.selectFrom('lists').selectAll().where('name', '=', name).executeTakeFirst();
}

/** The list named `name`, created if missing (safe against a concurrent creation). */
export async function findOrCreateList(db: Db, name: string, now: number): Promise<{ id: number; name: string; created: boolean }> {
  const inserted = await db
    .insertInto('lists')
    .values({ name, created_at: now })
    .onConflict((oc) => oc.column('name').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted) return { id: inserted.id, name, created: true };
  const existing = await findList(db, name);
  if (!existing) throw new Error(`list ${name} vanished while being created`);
  return { id: existing.id, name, created: false };
}

export async function createImport(db: Db, values: { listId: number; fileName: string; now: number }): Promise<number> {
  const row = await db
    .insertInto('imports')
    .values({ list_id: values.listId, file_name: values.fileName, state: 'running', read_count: 0, imported_count: 0, updated_count: 0, rejected_count: 0, error: null, started_at: values.now, finished_at: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
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

/**
 * Import transactions on PostgreSQL do not wait for their own WAL flush: hundreds of them per import
 * would each wait for an fsync. Nothing is at risk: the import's final state update (finishImport,
 * an ordinary commit) flushes the WAL of every transaction before it, and a crash before that leaves
 * the import `running`, never an inconsistent list. Must run inside a transaction.
 */
async function relaxCommit(trx: Db): Promise<void> {
  await sql`set local synchronous_commit = off`.execute(trx);
}

/** Appends accepted rows to the staging table and records rejects. */
export async function stageRows(db: Db, dialect: Dialect, importId: number, rows: StagedRow[], rejects: NewReject[], now: number): Promise<void> {
  if (dialect === 'postgres') await relaxCommit(db);
  if (dialect === 'postgres' && rows.length > 0) {
    // One statement with five array parameters, whatever the row count: nothing to re-parse per batch.
    await db.executeQuery(
      CompiledQuery.raw(
        'insert into import_rows (import_id, line, email, domain, data) select $1, * from unnest($2::bigint[], $3::text[], $4::text[], $5::text[])',
        [importId, rows.map((r) => r.line), rows.map((r) => r.email), rows.map((r) => r.domain), rows.map((r) => r.data)],
      ),
    );
  }
  for (const chunk of dialect === 'postgres' ? [] : chunks(rows, rowsPerStatement)) {
    const parameters: unknown[] = [];
    for (const row of chunk) parameters.push(importId, row.line, row.email, row.domain, row.data);
    await db.executeQuery(CompiledQuery.raw(stagingInsert(dialect, chunk.length), parameters));
  }
  for (const chunk of chunks(rejects, rowsPerStatement)) {
    await db
      .insertInto('import_rejects')
      .values(chunk.map((reject) => ({ import_id: importId, line: reject.line, reason: reject.reason, message: reject.message, excerpt: reject.excerpt, created_at: now })))
      .execute();
  }
}

export async function stagedSummary(db: Db, importId: number): Promise<{ count: number; minId: number; maxId: number }> {
  const row = await db
    .selectFrom('import_rows')
    .select([sql<number>`count(*)`.as('count'), sql<number | null>`min(id)`.as('min_id'), sql<number | null>`max(id)`.as('max_id')])
    .where('import_id', '=', importId)
    .executeTakeFirstOrThrow();
  return { count: Number(row.count), minId: Number(row.min_id ?? 0), maxId: Number(row.max_id ?? 0) };
}

/**
 * Moves the staged rows with fromId < id <= toId into the list and deletes them from staging, in one
 * transaction. Of several rows with the same address only the last one is applied (the later row of
 * the file wins; rows of later ranges are applied later). Returns how many distinct addresses were
 * written, and how many of those were already in the list.
 */
export async function applyStagedRange(
  db: Db,
  dialect: Dialect,
  range: { importId: number; listId: number; fromId: number; toId: number; now: number },
): Promise<{ written: number; existing: number }> {
  const { importId, listId, fromId, toId, now } = range;
  if (dialect === 'postgres') return applyStagedRangePostgres(db, range);
  return db.transaction().execute(async (trx) => {
    const latest = trx
      .selectFrom('import_rows as l')
      .select((eb) => eb.fn.max('l.id').as('id'))
      .where('l.import_id', '=', importId)
      .where('l.id', '>', fromId)
      .where('l.id', '<=', toId)
      .groupBy('l.email');
    const existing = await trx
      .selectFrom('import_rows as s')
      .select(sql<number>`count(*)`.as('n'))
      .where('s.id', 'in', latest)
      .where(({ exists, selectFrom }) =>
        exists(selectFrom('recipients as r').select(sql`1`.as('one')).where('r.list_id', '=', listId).whereRef('r.email', '=', 's.email')),
      )
      .executeTakeFirstOrThrow();
    const result = await trx
      .insertInto('recipients')
      .columns(['list_id', 'email', 'domain', 'data', 'created_at', 'updated_at'])
      .expression((eb) =>
        eb
          .selectFrom('import_rows as s')
          .select([sql.lit(listId).as('list_id'), 's.email', 's.domain', 's.data', sql.lit(now).as('created_at'), sql.lit(now).as('updated_at')])
          .where('s.id', 'in', latest),
      )
      .onConflict((oc) =>
        oc.columns(['list_id', 'email']).doUpdateSet((eb) => ({ domain: eb.ref('excluded.domain'), data: eb.ref('excluded.data'), updated_at: eb.ref('excluded.updated_at') })),
      )
      .executeTakeFirstOrThrow();
    await trx.deleteFrom('import_rows').where('import_id', '=', importId).where('id', '>', fromId).where('id', '<=', toId).execute();
    // Both SQLite's changes() and PostgreSQL's row count include the rows an upsert updated.
    return { written: Number(result.numInsertedOrUpdatedRows ?? 0), existing: Number(existing.n) };
  });
}

// PostgreSQL tells inserted from updated rows of an upsert (xmax is 0 only on a freshly inserted
// row version), so one statement does what SQLite needs a counting query for.
const applyPostgresSql = `
with latest as (
  select max(id) as id from import_rows where import_id = $1 and id > $2 and id <= $3 group by email
), written as (
  insert into recipients (list_id, email, domain, data, created_at, updated_at)
  select $4::bigint, s.email, s.domain, s.data, $5::bigint, $5::bigint from import_rows s where s.id in (select id from latest)
  on conflict (list_id, email) do update set domain = excluded.domain, data = excluded.data, updated_at = excluded.updated_at
  returning (xmax = 0) as inserted
)
select count(*) as written, count(*) filter (where inserted) as inserted from written`;

async function applyStagedRangePostgres(
  db: Db,
  range: { importId: number; listId: number; fromId: number; toId: number; now: number },
): Promise<{ written: number; existing: number }> {
  const { importId, listId, fromId, toId, now } = range;
  return db.transaction().execute(async (trx) => {
    await relaxCommit(trx);
    const result = await trx.executeQuery<{ written: number; inserted: number }>(CompiledQuery.raw(applyPostgresSql, [importId, fromId, toId, listId, now]));
    await trx.deleteFrom('import_rows').where('import_id', '=', importId).where('id', '>', fromId).where('id', '<=', toId).execute();
    const row = result.rows[0];
    const written = Number(row?.written ?? 0);
    return { written, existing: written - Number(row?.inserted ?? 0) };
  });
}

export async function discardStaged(db: Db, importId: number): Promise<void> {
  await db.deleteFrom('import_rows').where('import_id', '=', importId).execute();
}

export interface ImportCounts {
  read: number;
  imported: number;
  updated: number;
  rejected: number;
}

export async function finishImport(db: Db, importId: number, counts: ImportCounts, now: number): Promise<void> {
  await db
    .updateTable('imports')
    .set({ state: 'finished', read_count: counts.read, imported_count: counts.imported, updated_count: counts.updated, rejected_count: counts.rejected, finished_at: now })
    .where('id', '=', importId)
    .execute();
}

/** Marks an import failed; nothing of it reached the list, so imported and updated stay 0. */
export async function failImport(db: Db, importId: number, values: { read: number; rejected: number; error: string; now: number }): Promise<void> {
  await db
    .updateTable('imports')
    .set({ state: 'failed', read_count: values.read, rejected_count: values.rejected, error: values.error, finished_at: values.now })
    .where('id', '=', importId)
    .execute();
}

export async function getImport(db: Db, importId: number): Promise<(Selectable<ImportTable> & { list_name: string }) | undefined> {
  return db
    .selectFrom('imports')
    .innerJoin('lists', 'lists.id', 'imports.list_id')
    .selectAll('imports')
    .select('lists.name as list_name')
    .where('imports.id', '=', importId)
    .executeTakeFirst();
}

/** One page of an import's rejects in line order; pass the last id seen to get the next page. */
export async function listRejects(db: Db, importId: number, page: { afterId?: number; limit: number }): Promise<Array<Selectable<ImportRejectTable>>> {
  return db
    .selectFrom('import_rejects')
    .selectAll()
    .where('import_id', '=', importId)
    .where('id', '>', page.afterId ?? 0)
    .orderBy('id')
    .limit(page.limit)
    .execute();
}

export interface ListSummary {
  id: number;
  name: string;
  createdAt: number;
  recipients: number;
}

export async function listLists(db: Db): Promise<ListSummary[]> {
  const rows = await db
    .selectFrom('lists')
    .leftJoin('recipients', 'recipients.list_id', 'lists.id')
    .select(['lists.id', 'lists.name', 'lists.created_at', sql<number>`count(recipients.id)`.as('recipients')])
    .groupBy(['lists.id', 'lists.name', 'lists.created_at'])
    .orderBy('lists.name')
    .execute();
  return rows.map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at, recipients: Number(row.recipients) }));
}
