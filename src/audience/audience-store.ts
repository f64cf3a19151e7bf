import { CompiledQuery, sql, type Selectable } from 'kysely';
import { type Store, unlessUniqueViolation } from '../store/database.ts';
import type { SqliteStatementRunner } from '../store/sqlite-statement-runner.ts';
import type { ImportRejectTable, ImportTable, ListTable } from '../store/tables.ts';

// Queries of the audience import: lists, imports, their staged rows (written by import-staging-store.ts)
// and rejects. Every function takes the Store it runs on (inTransaction's, inside a transaction).

export async function findList(store: Store, name: string): Promise<Selectable<ListTable> | undefined> {
  return store.db.selectFrom('lists').selectAll().where('name', '=', name).executeTakeFirst();
}

/** The list named `name`, created if missing (safe against a concurrent creation). */
export async function findOrCreateList(
  store: Store,
  name: string,
  now: number,
): Promise<{ id: number; name: string; created: boolean }> {
  const inserted = await store.db
    .insertInto('lists')
    .values({ name, created_at: now })
    .onConflict((oc) => oc.column('name').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted) return { id: inserted.id, name, created: true };
  const existing = await findList(store, name);
  if (!existing) throw new Error(`list ${name} vanished while being created`);
  return { id: existing.id, name, created: false };
}

/** The personalization columns of one recipient of the list (undefined when it is empty): what the file is compared with. */
export async function sampleRecipientColumns(store: Store, listId: number): Promise<string[] | undefined> {
  const row = await store.db
    .selectFrom('recipients')
    .select('data')
    .where('list_id', '=', listId)
    .limit(1)
    .executeTakeFirst();
  if (!row) return undefined;
  const data: unknown = typeof row.data === 'string' ? JSON.parse(row.data) : row.data;
  return data && typeof data === 'object' ? Object.keys(data) : [];
}

export async function createImport(
  store: Store,
  values: { listId: number; fileName: string; now: number },
): Promise<number> {
  const row = await store.db
    .insertInto('imports')
    .values({
      list_id: values.listId,
      file_name: values.fileName,
      state: 'running',
      read_count: 0,
      imported_count: 0,
      updated_count: 0,
      rejected_count: 0,
      error: null,
      started_at: values.now,
      finished_at: null,
      updated_at: values.now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/**
 * Import transactions on PostgreSQL do not wait for their own WAL flush: hundreds of them per import
 * would each wait for an fsync. Nothing is at risk: the import's final state update (finishImport,
 * an ordinary commit) flushes the WAL of every transaction before it, and a crash before that leaves
 * the import `running`, never an inconsistent list. Must run inside a transaction.
 */
export const relaxCommitSql = 'set local synchronous_commit = off';
async function relaxCommit(store: Store): Promise<void> {
  await store.db.executeQuery(CompiledQuery.raw(relaxCommitSql));
}

/**
 * A running import's heartbeat, written in the transaction of each batch it stages or applies: the
 * rows read so far and when. False when the import is no longer running (the cleanup workflow took it
 * for interrupted and failed it): the caller must stop.
 */
export async function renewImport(
  store: Store,
  importId: number,
  progress: { read: number; rejected: number; now: number },
): Promise<boolean> {
  const result = await renewImportQuery(store, importId, progress).executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export function renewImportQuery(
  store: Store,
  importId: number,
  progress: { read: number; rejected: number; now: number },
) {
  return store.db
    .updateTable('imports')
    .set({ read_count: progress.read, rejected_count: progress.rejected, updated_at: progress.now })
    .where('id', '=', importId)
    .where('state', '=', 'running');
}

export async function stagedSummary(
  store: Store,
  importId: number,
): Promise<{ count: number; minId: number; maxId: number }> {
  const row = await store.db
    .selectFrom('import_rows')
    .select([
      sql<number>`count(*)`.as('count'),
      sql<number | null>`min(id)`.as('min_id'),
      sql<number | null>`max(id)`.as('max_id'),
    ])
    .where('import_id', '=', importId)
    .executeTakeFirstOrThrow();
  return { count: Number(row.count), minId: Number(row.min_id ?? 0), maxId: Number(row.max_id ?? 0) };
}

export interface StagedRepeats {
  count: number;
  rows: Array<{ line: number; email: string; firstLine: number }>;
}

type RepeatRow = { line: number; email: string; first_line: number; total: number };

/**
 * Staged rows of an import that repeat an address of an earlier row of the same file (compared as
 * preparation compares addresses: case folded): how many, and the first `sample` of them in line
 * order with the line of the address's first row. Read before the rows are applied.
 */
async function stagedRepeats(store: Store, importId: number, sample: number): Promise<StagedRepeats> {
  return repeatsOf((await store.db.executeQuery(stagedRepeatsQuery(store, importId, sample))).rows, sample);
}

/**
 * stagedRepeats on a reader of its own, from a snapshot taken before this resolves, so the caller may
 * apply (and delete) staged rows while the sort of every staged row runs: on `runner`'s thread
 * (SQLite), or on a connection of its own in a repeatable-read transaction (PostgreSQL). An in-memory
 * SQLite database has one connection: its repeats are read before this resolves.
 */
export async function stagedRepeatsInBackground(
  store: Store,
  importId: number,
  sample: number,
  runner: SqliteStatementRunner | undefined,
): Promise<{ repeats: Promise<StagedRepeats> }> {
  const query = stagedRepeatsQuery(store, importId, sample);
  if (runner) {
    const { rows } = await runner.readSnapshot(query);
    return { repeats: rows.then((found) => repeatsOf(found, sample)) };
  }
  if (!store.withPgClient) return { repeats: Promise.resolve(await stagedRepeats(store, importId, sample)) };
  let snapshotTaken = () => {};
  const taken = new Promise<void>((resolve) => {
    snapshotTaken = resolve;
  });
  const repeats = store.withPgClient(async (client) => {
    await client.query('begin isolation level repeatable read');
    // The transaction's snapshot is taken at its first statement.
    await client.query('select 1');
    snapshotTaken();
    const result = await client.query<RepeatRow>(query.sql, [...query.parameters]);
    await client.query('commit');
    return repeatsOf(result.rows, sample);
  });
  await Promise.race([taken, repeats]);
  return { repeats };
}

function stagedRepeatsQuery(store: Store, importId: number, sample: number): CompiledQuery<RepeatRow> {
  return sql<RepeatRow>`
    select line, email, first_line, count(*) over () as total from (
      select line, email,
        min(line) over (partition by lower(email)) as first_line,
        row_number() over (partition by lower(email) order by id) as rn
      from import_rows where import_id = ${importId}
    ) t
    where rn > 1 order by line limit ${Math.max(1, sample)}`.compile(store.db);
}

function repeatsOf(rows: readonly RepeatRow[], sample: number): StagedRepeats {
  return {
    count: Number(rows[0]?.total ?? 0),
    rows: rows
      .slice(0, sample)
      .map((row) => ({ line: Number(row.line), email: row.email, firstLine: Number(row.first_line) })),
  };
}

export interface StagedRange {
  importId: number;
  listId: number;
  fromId: number;
  toId: number;
  now: number;
  /**
   * PostgreSQL: only the rows whose address hashes to `index` of `count` parts (every row of an
   * address falls in the same part), so several connections can apply one range side by side.
   */
  part?: { index: number; count: number };
}

export interface AppliedRange {
  /** Staged rows taken out of staging (duplicates included). */
  staged: number;
  /** Distinct addresses written, and how many of those were already in the list. */
  written: number;
  existing: number;
}

/**
 * Moves the staged rows with fromId < id <= toId into the list and deletes them from staging. Runs on
 * the store it is given: the caller's transaction, in which it also renews the import's heartbeat.
 * Of several rows with the same address only the last one is applied (the later row of the file
 * wins; rows of later ranges are applied later).
 */
export async function applyStagedRange(store: Store, range: StagedRange): Promise<AppliedRange> {
  if (store.dialect === 'postgres') return applyStagedRangePostgres(store, range);
  const { importId, listId, fromId, toId, now } = range;
  if (range.part && range.part.count !== 1)
    throw new Error('SQLite applies staged rows on one connection: one part only');
  const latest = store.db
    .selectFrom('import_rows as l')
    .select((eb) => eb.fn.max('l.id').as('id'))
    .where('l.import_id', '=', importId)
    .where('l.id', '>', fromId)
    .where('l.id', '<=', toId)
    .groupBy('l.email');
  const insert = store.db
    .insertInto('recipients')
    .columns(['list_id', 'email', 'domain', 'data', 'created_at', 'updated_at'])
    .expression((eb) =>
      eb
        .selectFrom('import_rows as s')
        .select([
          sql.lit(listId).as('list_id'),
          's.email',
          's.domain',
          's.data',
          sql.lit(now).as('created_at'),
          sql.lit(now).as('updated_at'),
        ])
        .where('s.id', 'in', latest),
    );
  // Optimistic first, as on PostgreSQL: a range of addresses all new to the list (every range of a
  // first import) needs neither the count of existing ones nor the upsert.
  const { written, existing } = await unlessUniqueViolation(
    store,
    async () => ({
      written: Number((await insert.executeTakeFirstOrThrow()).numInsertedOrUpdatedRows ?? 0),
      existing: 0,
    }),
    async () => {
      const found = await store.db
        .selectFrom('import_rows as s')
        .select(sql<number>`count(*)`.as('n'))
        .where('s.id', 'in', latest)
        .where(({ exists, selectFrom }) =>
          exists(
            selectFrom('recipients as r')
              .select(sql`1`.as('one'))
              .where('r.list_id', '=', listId)
              .whereRef('r.email', '=', 's.email'),
          ),
        )
        .executeTakeFirstOrThrow();
      const result = await insert
        .onConflict((oc) =>
          oc.columns(['list_id', 'email']).doUpdateSet((eb) => ({
            domain: eb.ref('excluded.domain'),
            data: eb.ref('excluded.data'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .executeTakeFirstOrThrow();
      return { written: Number(result.numInsertedOrUpdatedRows ?? 0), existing: Number(found.n) };
    },
  );
  const deleted = await store.db
    .deleteFrom('import_rows')
    .where('import_id', '=', importId)
    .where('id', '>', fromId)
    .where('id', '<=', toId)
    .executeTakeFirst();
  // SQLite's changes() includes the rows an upsert updated.
  return { staged: Number(deleted.numDeletedRows), written, existing };
}

// One statement does what SQLite needs a counting query for: PostgreSQL tells inserted from updated
// rows of an upsert (xmax is 0 only on a freshly inserted row version). `distinct on` keeps the last
// staged row of each address in one sort of the range, and the sort by address is what makes the
// upsert cheap: consecutive rows land on neighbouring pages of the (list_id, email) index (a third of
// the server CPU of upserting in file order, measured at 1M rows). $6 and $7: the part (see StagedRange).
// Optimistic first: a range whose addresses are all new to the list (every range of a first import)
// is inserted without ON CONFLICT, which costs the server a sixth less (no speculative check of the
// unique index per row); a range that meets one already in the list fails as a whole, back to a
// savepoint, and is upserted.
const applyPostgresSql = (upsert: boolean) => `
with written as (
  insert into recipients (list_id, email, domain, data, created_at, updated_at)
  select distinct on (email) $4::bigint, email, domain, data, $5::bigint, $5::bigint
  from import_rows where import_id = $1 and id > $2 and id <= $3 and abs(hashtext(email) % $7::int) = $6::int
  order by email, id desc
  ${upsert ? 'on conflict (list_id, email) do update set domain = excluded.domain, data = excluded.data, updated_at = excluded.updated_at' : ''}
  returning (xmax = 0) as inserted
)
select count(*) as written, count(*) filter (where inserted) as inserted from written`;
const insertPostgresSql = applyPostgresSql(false);
const upsertPostgresSql = applyPostgresSql(true);

const deleteAppliedPostgresSql =
  'delete from import_rows where import_id = $1 and id > $2 and id <= $3 and abs(hashtext(email) % $5::int) = $4::int';

async function applyStagedRangePostgres(store: Store, range: StagedRange): Promise<AppliedRange> {
  const { importId, listId, fromId, toId, now } = range;
  const { index, count } = range.part ?? { index: 0, count: 1 };
  await relaxCommit(store);
  const parameters = [importId, fromId, toId, listId, now, index, count];
  const written = (query: string) =>
    store.db.executeQuery<{ written: number; inserted: number }>(CompiledQuery.raw(query, parameters));
  // Inside the range's transaction (applyStaged): a failed insert is undone back to a savepoint.
  const result = await unlessUniqueViolation(
    store,
    () => written(insertPostgresSql),
    () => written(upsertPostgresSql),
  );
  const deleted = await store.db.executeQuery(
    CompiledQuery.raw(deleteAppliedPostgresSql, [importId, fromId, toId, index, count]),
  );
  const row = result.rows[0];
  const total = Number(row?.written ?? 0);
  return { staged: Number(deleted.numAffectedRows ?? 0), written: total, existing: total - Number(row?.inserted ?? 0) };
}

export async function discardStaged(store: Store, importId: number): Promise<void> {
  await store.db.deleteFrom('import_rows').where('import_id', '=', importId).execute();
}

/** A running import into `listId` whose process renewed its lease since `aliveSince`, if any (the oldest). */
export async function liveImportOfList(
  store: Store,
  listId: number,
  aliveSince: number,
): Promise<{ id: number; fileName: string; readCount: number } | undefined> {
  const row = await store.db
    .selectFrom('imports')
    .select(['id', 'file_name', 'read_count'])
    .where('list_id', '=', listId)
    .where('state', '=', 'running')
    .where(sql<number>`coalesce(updated_at, started_at)`, '>=', aliveSince)
    .orderBy('id')
    .executeTakeFirst();
  return row && { id: Number(row.id), fileName: row.file_name, readCount: Number(row.read_count) };
}

/** Running imports whose last recorded progress is older than `before`, oldest first. */
export async function staleImports(
  store: Store,
  before: number,
): Promise<Array<{ id: number; fileName: string; lastProgressAt: number }>> {
  const rows = await store.db
    .selectFrom('imports')
    .select(['id', 'file_name', sql<number>`coalesce(updated_at, started_at)`.as('last_progress_at')])
    .where('state', '=', 'running')
    .where(sql<number>`coalesce(updated_at, started_at)`, '<', before)
    .orderBy('id')
    .execute();
  return rows.map((row) => ({ id: row.id, fileName: row.file_name, lastProgressAt: Number(row.last_progress_at) }));
}

/**
 * Fails an import found stale, unless it progressed (or ended) since: the condition is checked again
 * in the update itself, which waits for any batch of that import being written. True if it failed it.
 */
export async function failStaleImport(
  store: Store,
  importId: number,
  values: { before: number; error: string; now: number },
): Promise<boolean> {
  const result = await store.db
    .updateTable('imports')
    .set({ state: 'failed', error: values.error, finished_at: values.now, updated_at: values.now })
    .where('id', '=', importId)
    .where('state', '=', 'running')
    .where(sql<number>`coalesce(updated_at, started_at)`, '<', values.before)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Imports that are over (failed or finished) yet still have staged rows. */
export async function importsWithStagedRows(store: Store): Promise<number[]> {
  const rows = await store.db
    .selectFrom('imports')
    .select('id')
    .where('state', '!=', 'running')
    .where(({ exists, selectFrom }) =>
      exists(selectFrom('import_rows').select(sql`1`.as('one')).whereRef('import_rows.import_id', '=', 'imports.id')),
    )
    .orderBy('id')
    .execute();
  return rows.map((row) => row.id);
}

/** Deletes an import's staged rows with fromId <= id < toId; returns how many. */
export async function discardStagedWindow(
  store: Store,
  importId: number,
  fromId: number,
  toId: number,
): Promise<number> {
  const result = await store.db
    .deleteFrom('import_rows')
    .where('import_id', '=', importId)
    .where('id', '>=', fromId)
    .where('id', '<', toId)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export interface ImportCounts {
  read: number;
  imported: number;
  updated: number;
  rejected: number;
}

export async function finishImport(store: Store, importId: number, counts: ImportCounts, now: number): Promise<void> {
  await store.db
    .updateTable('imports')
    .set({
      state: 'finished',
      read_count: counts.read,
      imported_count: counts.imported,
      updated_count: counts.updated,
      rejected_count: counts.rejected,
      finished_at: now,
      updated_at: now,
    })
    .where('id', '=', importId)
    .execute();
}

/** Marks an import failed; nothing of it reached the list, so imported and updated stay 0. */
export async function failImport(
  store: Store,
  importId: number,
  values: { read: number; rejected: number; error: string; now: number },
): Promise<void> {
  await store.db
    .updateTable('imports')
    .set({
      state: 'failed',
      read_count: values.read,
      rejected_count: values.rejected,
      error: values.error,
      finished_at: values.now,
      updated_at: values.now,
    })
    .where('id', '=', importId)
    // An import the cleanup workflow already failed as interrupted keeps that error.
    .where('state', '=', 'running')
    .execute();
}

export async function getImport(
  store: Store,
  importId: number,
): Promise<(Selectable<ImportTable> & { list_name: string }) | undefined> {
  return store.db
    .selectFrom('imports')
    .innerJoin('lists', 'lists.id', 'imports.list_id')
    .selectAll('imports')
    .select('lists.name as list_name')
    .where('imports.id', '=', importId)
    .executeTakeFirst();
}

/** One page of an import's rejects in line order; pass the last id seen to get the next page. */
export async function listRejects(
  store: Store,
  importId: number,
  page: { afterId?: number; limit: number },
): Promise<Array<Selectable<ImportRejectTable>>> {
  return store.db
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

export async function listLists(store: Store): Promise<ListSummary[]> {
  const rows = await store.db
    .selectFrom('lists')
    .leftJoin('recipients', 'recipients.list_id', 'lists.id')
    .select(['lists.id', 'lists.name', 'lists.created_at', sql<number>`count(recipients.id)`.as('recipients')])
    .groupBy(['lists.id', 'lists.name', 'lists.created_at'])
    .orderBy('lists.name')
    .execute();
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    createdAt: row.created_at,
    recipients: Number(row.recipients),
  }));
}
