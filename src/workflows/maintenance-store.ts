import { sql, type Kysely } from 'kysely';
import type { Store } from '../store/database.ts';
import type { Database } from '../store/tables.ts';

// Database maintenance (the cleanup workflow's last step and `herald db maintain`) and the space
// figures of `herald db status`: ANALYZE, incremental vacuum, checkpoints, reindexing, their history.

export interface SqliteSpace {
  pageSize: number;
  pageCount: number;
  freelistPages: number;
  /** 0 none, 1 full, 2 incremental (PRAGMA auto_vacuum). */
  autoVacuum: number;
}

export async function sqliteSpace(store: Store): Promise<SqliteSpace> {
  const pragma = async (name: string) => {
    const result = await sql<Record<string, number>>`${sql.raw(`PRAGMA ${name}`)}`.execute(store.db);
    return Number(Object.values(result.rows[0] ?? { v: 0 })[0]);
  };
  return {
    pageSize: await pragma('page_size'),
    pageCount: await pragma('page_count'),
    freelistPages: await pragma('freelist_count'),
    autoVacuum: await pragma('auto_vacuum'),
  };
}

/**
 * SQLite's own check of the file: `quick_check` (every page readable, records well formed; linear in
 * the file) or `integrity_check` (also every index against its table). Up to `maxProblems` lines;
 * none when the file is sound.
 */
export async function sqliteIntegrityProblems(store: Store, full: boolean, maxProblems: number): Promise<string[]> {
  const pragma = full ? 'integrity_check' : 'quick_check';
  const result = await sql<Record<string, string>>`${sql.raw(`PRAGMA ${pragma}(${Math.trunc(maxProblems)})`)}`.execute(
    store.db,
  );
  // A row may hold several lines, under a "*** in database main ***" heading.
  const lines = result.rows
    .flatMap((row) => String(Object.values(row)[0]).split('\n'))
    .filter((line) => line !== '' && !line.startsWith('*** in database'));
  return lines.length === 1 && lines[0] === 'ok' ? [] : lines;
}

/**
 * SQLite: a consistent copy of the whole database in a new file, taken while others write (a read
 * transaction: WAL writers go on). The copy is compacted, without the free pages.
 */
export async function sqliteVacuumInto(store: Store, file: string): Promise<void> {
  await sql`VACUUM INTO ${file}`.execute(store.db);
}

/** PostgreSQL: whether pages carry checksums, and the checksum failures it has met in this database. */
export async function postgresChecksums(store: Store): Promise<{ enabled: boolean; failures: number }> {
  const setting = await sql<{ data_checksums: string }>`show data_checksums`.execute(store.db);
  const failures = await sql<{ failures: number | null }>`
    select checksum_failures as failures from pg_stat_database where datname = current_database()`.execute(store.db);
  return { enabled: setting.rows[0]?.data_checksums === 'on', failures: Number(failures.rows[0]?.failures ?? 0) };
}

/** Bounded ANALYZE: samples each index instead of reading whole tables inside the write lock. */
export async function sqliteAnalyze(store: Store): Promise<void> {
  await sql`PRAGMA analysis_limit = 1000`.execute(store.db);
  await sql`ANALYZE`.execute(store.db);
}

/** Returns up to `pages` free pages to the file system (only when auto_vacuum = incremental). */
export async function sqliteIncrementalVacuum(store: Store, pages: number): Promise<void> {
  await sql`${sql.raw(`PRAGMA incremental_vacuum(${Math.max(1, Math.floor(pages))})`)}`.execute(store.db);
}

/** Rewrites the whole file in incremental auto-vacuum mode. Blocks writers for its duration: run it off-peak. */
export async function sqliteConvertToIncremental(store: Store): Promise<void> {
  await sql`PRAGMA auto_vacuum = INCREMENTAL`.execute(store.db);
  await sql`VACUUM`.execute(store.db);
}

export async function sqliteCheckpoint(store: Store): Promise<void> {
  await sql`PRAGMA wal_checkpoint(PASSIVE)`.execute(store.db);
}

export async function existingTables(store: Store, names: string[]): Promise<string[]> {
  const rows =
    store.dialect === 'postgres'
      ? await sql<{
          name: string;
        }>`select tablename as name from pg_tables where schemaname = current_schema()`.execute(store.db)
      : await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(store.db);
  const present = new Set(rows.rows.map((r) => r.name));
  return names.filter((n) => present.has(n));
}

/** VACUUM cannot run in a transaction; Kysely runs a lone statement outside one. */
export async function postgresVacuumAnalyze(store: Store, table: string, timeoutMs: number): Promise<void> {
  await withMaintenanceTimeout(store, timeoutMs, (db) => sql`VACUUM (ANALYZE) ${sql.table(table)}`.execute(db));
}

/**
 * A VACUUM or REINDEX of a large table can outrun database.statementTimeoutMs, meant for the roles'
 * queries: on its own pinned connection it gets database.maintenanceTimeoutMs, and the connection
 * goes back to the pool with its start-up setting (RESET).
 */
async function withMaintenanceTimeout(
  store: Store,
  timeoutMs: number,
  work: (db: Kysely<Database>) => Promise<unknown>,
): Promise<void> {
  await store.db.connection().execute(async (db) => {
    await sql`select set_config('statement_timeout', ${String(timeoutMs)}, false)`.execute(db);
    try {
      await work(db);
    } finally {
      await sql`reset statement_timeout`.execute(db);
    }
  });
}

/** CONCURRENTLY: builds the new index beside the old one, so writes continue (PostgreSQL 12+). */
export async function postgresReindexConcurrently(store: Store, index: string, timeoutMs: number): Promise<void> {
  await withMaintenanceTimeout(store, timeoutMs, (db) => sql`REINDEX INDEX CONCURRENTLY ${sql.id(index)}`.execute(db));
}

/**
 * The copies a failed or killed REINDEX INDEX CONCURRENTLY left behind (`<index>_ccnew`, or the old
 * index renamed `<index>_ccold` when it failed at the end), INVALID: no query uses them, yet every
 * insert and update of their table writes them. Each is dropped CONCURRENTLY (writes go on); one that
 * cannot be dropped now (a lock held, another maintenance building it) is left for the next run.
 */
export async function postgresDropInvalidIndexCopies(
  store: Store,
): Promise<{ dropped: string[]; failed: Array<{ index: string; error: unknown }> }> {
  const result = await sql<{ name: string }>`
    select ic.relname as name from pg_index i
    join pg_class ic on ic.oid = i.indexrelid
    join pg_namespace n on n.oid = ic.relnamespace
    where n.nspname = current_schema() and not i.indisvalid and ic.relname ~ '_cc(new|old)[0-9]*$'
    order by ic.relname`.execute(store.db);
  const dropped: string[] = [];
  const failed: Array<{ index: string; error: unknown }> = [];
  for (const { name } of result.rows) {
    try {
      await sql`DROP INDEX CONCURRENTLY IF EXISTS ${sql.id(name)}`.execute(store.db);
      dropped.push(name);
    } catch (error) {
      failed.push({ index: name, error });
    }
  }
  return { dropped, failed };
}

export interface PostgresIndexStats {
  name: string;
  table: string;
  bytes: number;
  tuples: number;
  /** Sum of the average widths of the indexed columns (pg_stats), 8 when unknown. */
  keyWidth: number;
  /** Leaf fill factor in percent (btree default 90). */
  fillFactor: number;
}

export async function postgresIndexStats(store: Store): Promise<PostgresIndexStats[]> {
  const result = await sql<PostgresIndexStats>`
    select ic.relname as name, c.relname as "table", pg_relation_size(i.indexrelid) as bytes,
      greatest(ic.reltuples, 0)::bigint as tuples,
      coalesce((select sum(s.avg_width) from pg_attribute a
        join pg_stats s on s.schemaname = n.nspname and s.tablename = c.relname and s.attname = a.attname
        where a.attrelid = i.indrelid and a.attnum = any(i.indkey)), 8)::bigint as "keyWidth",
      coalesce((select substring(opt from 'fillfactor=([0-9]+)')::int from unnest(ic.reloptions) opt where opt like 'fillfactor=%'), 90) as "fillFactor"
    from pg_index i
    join pg_class c on c.oid = i.indrelid
    join pg_class ic on ic.oid = i.indexrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema()
    order by c.relname, ic.relname`.execute(store.db);
  return result.rows.map((r) => ({
    ...r,
    bytes: Number(r.bytes),
    tuples: Number(r.tuples),
    keyWidth: Number(r.keyWidth),
    fillFactor: Number(r.fillFactor),
  }));
}

export interface PostgresLockWait {
  pid: number;
  waitingMs: number;
  query: string;
  blockerPid: number;
  blockerState: string | null;
  blockerQuery: string;
  /** How long the blocker's transaction has been open; null outside a transaction. */
  blockerTransactionMs: number | null;
}

/** Sessions of this database waiting for a lock at this moment, each with the session holding it. */
export async function postgresLockWaits(store: Store): Promise<PostgresLockWait[]> {
  const result = await sql<PostgresLockWait>`
    select a.pid, (extract(epoch from (now() - a.query_start)) * 1000)::bigint as "waitingMs",
      left(a.query, 200) as query, b.pid as "blockerPid", b.state as "blockerState",
      left(b.query, 200) as "blockerQuery",
      (extract(epoch from (now() - b.xact_start)) * 1000)::bigint as "blockerTransactionMs"
    from pg_stat_activity a
    cross join lateral unnest(pg_blocking_pids(a.pid)) as blocking(pid)
    join pg_stat_activity b on b.pid = blocking.pid
    where a.datname = current_database() and a.wait_event_type = 'Lock'
    order by "waitingMs" desc
    limit 20`.execute(store.db);
  return result.rows.map((r) => ({
    ...r,
    waitingMs: Number(r.waitingMs),
    blockerTransactionMs: r.blockerTransactionMs === null ? null : Number(r.blockerTransactionMs),
  }));
}

export interface MaintenanceRecord {
  source: string;
  startedAt: number;
  /** While running: the last progress. */
  finishedAt: number;
  summary: unknown;
  error: string | null;
  state: 'running' | 'done' | 'failed';
  step: string | null;
  /** `host:pid` of the process that ran it. */
  owner: string | null;
}

/** The PostgreSQL advisory lock one maintenance run holds (any process: CLI, API, cleanup workflow). */
export const maintenanceLockKey = 0x48657264; // "Herd"

/**
 * Runs `work` holding the maintenance lock on a session of its own (PostgreSQL; released when the
 * session ends, a killed process included), or returns `busy` without running it when another run
 * holds it. SQLite runs `work` as is (its VACUUM takes the file's write lock itself).
 */
export async function withMaintenanceLock<T>(
  store: Store,
  work: () => Promise<T>,
): Promise<{ kind: 'done'; value: T } | { kind: 'busy' }> {
  if (store.dialect !== 'postgres' || !store.withPgClient) return { kind: 'done', value: await work() };
  return store.withPgClient(async (client) => {
    const locked = await client.query<{ got: boolean }>('select pg_try_advisory_lock($1) as got', [maintenanceLockKey]);
    if (!locked.rows[0]?.got) return { kind: 'busy' as const };
    try {
      return { kind: 'done' as const, value: await work() };
    } finally {
      await client.query('select pg_advisory_unlock($1)', [maintenanceLockKey]);
    }
  });
}

/** The run's row, written before its first statement: a run killed midway stays `running` at its step. */
export async function startMaintenanceRecord(
  store: Store,
  run: { source: string; startedAt: number; owner: string },
): Promise<number> {
  const row = await store.db
    .insertInto('db_maintenance')
    .values({
      source: run.source,
      started_at: run.startedAt,
      finished_at: run.startedAt,
      summary: '{}',
      error: null,
      state: 'running',
      step: 'starting',
      owner: run.owner,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export async function recordMaintenanceStep(store: Store, id: number, step: string, now: number): Promise<void> {
  await store.db.updateTable('db_maintenance').set({ step, finished_at: now }).where('id', '=', id).execute();
}

export async function finishMaintenanceRecord(
  store: Store,
  id: number,
  end: { finishedAt: number; summary: unknown; error: string | null },
): Promise<void> {
  await store.db
    .updateTable('db_maintenance')
    .set({
      finished_at: end.finishedAt,
      summary: JSON.stringify(end.summary),
      error: end.error,
      state: end.error === null ? 'done' : 'failed',
    })
    .where('id', '=', id)
    .execute();
}

export async function lastMaintenance(store: Store): Promise<MaintenanceRecord | undefined> {
  const row = await store.db.selectFrom('db_maintenance').selectAll().orderBy('id', 'desc').limit(1).executeTakeFirst();
  if (!row) return undefined;
  return {
    source: row.source,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    summary: JSON.parse(row.summary) as unknown,
    error: row.error,
    state: row.state,
    step: row.step,
    owner: row.owner,
  };
}

export async function purgeMaintenanceHistory(store: Store, before: number): Promise<number> {
  const result = await store.db.deleteFrom('db_maintenance').where('finished_at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}

// --- status ------------------------------------------------------------------------------------

export interface TableSpaceRow {
  name: string;
  rows: number;
  /** PostgreSQL: n_live_tup (an estimate, no full scan); SQLite: count(*). */
  rowsEstimated: boolean;
  tableBytes: number;
  indexBytes: number;
  /** PostgreSQL n_dead_tup; null on SQLite (deleted space shows as free pages instead). */
  deadRows: number | null;
  /** SQLite (dbstat): unused bytes inside the table's pages; null on PostgreSQL. */
  unusedBytes: number | null;
  lastVacuumAt: number | null;
  lastAnalyzeAt: number | null;
}

export interface IndexSpaceRow {
  name: string;
  table: string;
  bytes: number;
  unusedBytes: number | null;
}

export async function sqliteTableSpace(store: Store): Promise<{ tables: TableSpaceRow[]; indexes: IndexSpaceRow[] }> {
  const objects = await sql<{ name: string; type: string; tbl_name: string }>`
    select name, type, tbl_name from sqlite_master where type in ('table', 'index') and name not like 'sqlite_%' order by name`.execute(
    store.db,
  );
  const space = await sql<{ name: string; bytes: number; unused: number }>`
    select name, sum(pgsize) as bytes, sum(unused) as unused from dbstat group by name`.execute(store.db);
  const bytesOf = new Map(space.rows.map((r) => [r.name, { bytes: Number(r.bytes), unused: Number(r.unused) }]));
  const indexes: IndexSpaceRow[] = [];
  for (const row of space.rows) {
    const object = objects.rows.find((o) => o.name === row.name);
    const autoIndex = /^sqlite_autoindex_(.+)_\d+$/.exec(row.name);
    if (object?.type === 'index')
      indexes.push({
        name: row.name,
        table: object.tbl_name,
        bytes: Number(row.bytes),
        unusedBytes: Number(row.unused),
      });
    else if (autoIndex)
      indexes.push({ name: row.name, table: autoIndex[1]!, bytes: Number(row.bytes), unusedBytes: Number(row.unused) });
  }
  const tables: TableSpaceRow[] = [];
  for (const object of objects.rows.filter((o) => o.type === 'table')) {
    const count = await sql<{ n: number }>`select count(*) as n from ${sql.table(object.name)}`.execute(store.db);
    const own = bytesOf.get(object.name) ?? { bytes: 0, unused: 0 };
    tables.push({
      name: object.name,
      rows: Number(count.rows[0]?.n ?? 0),
      rowsEstimated: false,
      tableBytes: own.bytes,
      indexBytes: indexes.filter((i) => i.table === object.name).reduce((sum, i) => sum + i.bytes, 0),
      deadRows: null,
      unusedBytes: own.unused,
      lastVacuumAt: null,
      lastAnalyzeAt: null,
    });
  }
  return { tables, indexes };
}

export async function postgresTableSpace(store: Store): Promise<{ tables: TableSpaceRow[]; databaseBytes: number }> {
  const result = await sql<{
    name: string;
    rows: number;
    dead: number;
    table_bytes: number;
    index_bytes: number;
    vacuumed: number | null;
    analyzed: number | null;
  }>`
    select relname as name, n_live_tup as rows, n_dead_tup as dead,
      pg_table_size(relid) as table_bytes, pg_indexes_size(relid) as index_bytes,
      (extract(epoch from greatest(last_vacuum, last_autovacuum)) * 1000)::bigint as vacuumed,
      (extract(epoch from greatest(last_analyze, last_autoanalyze)) * 1000)::bigint as analyzed
    from pg_stat_user_tables where schemaname = current_schema() order by relname`.execute(store.db);
  const size = await sql<{ bytes: number }>`select pg_database_size(current_database()) as bytes`.execute(store.db);
  return {
    databaseBytes: Number(size.rows[0]?.bytes ?? 0),
    tables: result.rows.map((r) => ({
      name: r.name,
      rows: Number(r.rows),
      rowsEstimated: true,
      tableBytes: Number(r.table_bytes),
      indexBytes: Number(r.index_bytes),
      deadRows: Number(r.dead),
      unusedBytes: null,
      lastVacuumAt: r.vacuumed === null ? null : Number(r.vacuumed),
      lastAnalyzeAt: r.analyzed === null ? null : Number(r.analyzed),
    })),
  };
}
