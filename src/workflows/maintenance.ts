import { hostname } from 'node:os';
import type { Clock } from '../common/clock.ts';
import { AppError, describeError } from '../common/errors.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';
import {
  existingTables,
  postgresDropInvalidIndexCopies,
  postgresIndexStats,
  postgresReindexConcurrently,
  postgresVacuumAnalyze,
  finishMaintenanceRecord,
  lastMaintenance,
  recordMaintenanceStep,
  startMaintenanceRecord,
  withMaintenanceLock,
  sqliteAnalyze,
  sqliteCheckpoint,
  sqliteConvertToIncremental,
  sqliteIncrementalVacuum,
  sqliteSpace,
} from './maintenance-store.ts';
import { estimateIndexBloat, shouldReindex } from './index-bloat.ts';

// Database maintenance per dialect, run by `cleanup` after its purges and by `herald db maintain`.
// SQLite: bounded ANALYZE, then free pages handed back a chunk at a time (incremental vacuum).
// PostgreSQL: VACUUM (ANALYZE) of the tables that churn, REINDEX CONCURRENTLY of bloated indexes.

/** Tables with heavy insert/update/delete traffic. Later features append theirs. */
export const hotTables = [
  'delivery_logs',
  'deliveries',
  'recipients',
  'addresses',
  'import_rejects',
  'workflow_runs',
  'workflow_steps',
  'workflow_step_logs',
  'delivery_stats_hourly',
  'delivery_delays',
];

export interface MaintenanceHooks {
  log(message: string): Promise<void>;
  /** Called between statements: lease renewal and a chance for other I/O. */
  keepAlive(): Promise<void>;
}

export interface MaintenanceOptions {
  /** SQLite only: switch to incremental auto-vacuum with a full VACUUM (rewrites the file; blocks writers). */
  convertSqlite?: boolean;
  source: string;
  /** `host:pid` recorded as the run's owner (default this process). */
  owner?: string;
}

/** Records the step a run is about to take: the step a killed run stopped at. */
type Progress = (step: string) => Promise<void>;

// Pages freed per incremental_vacuum call: 1,000 pages (4 MB) keeps each write lock in milliseconds.
const vacuumChunkPages = 1_000;

export async function runMaintenance(
  store: Store,
  config: HeraldConfig,
  clock: Clock,
  hooks: MaintenanceHooks,
  options: MaintenanceOptions,
): Promise<Record<string, unknown>> {
  // One run at a time: a second one (`herald db maintain` while the cleanup workflow's runs, the
  // dashboard's button) waited on the first one's locks and failed as a lock timeout blaming "the
  // session holding the lock", which was the other maintenance.
  const run = await withMaintenanceLock(store, () => maintainRecorded(store, config, clock, hooks, options));
  if (run.kind === 'done') return run.value;
  const running = await lastMaintenance(store);
  const which =
    running?.state === 'running'
      ? ` (${running.source}, started ${new Date(Number(running.startedAt)).toISOString()} by ${running.owner ?? 'an unknown process'}, now at ${running.step ?? 'its start'})`
      : '';
  throw new AppError(
    'INVALID_STATE',
    `database maintenance is already running${which}: nothing was done; \`herald db status\` shows its progress, run again once it has finished`,
    { details: { running: running?.state === 'running' ? running : null } },
  );
}

async function maintainRecorded(
  store: Store,
  config: HeraldConfig,
  clock: Clock,
  hooks: MaintenanceHooks,
  options: MaintenanceOptions,
): Promise<Record<string, unknown>> {
  const startedAt = clock.now();
  // Written before the first statement and completed at the end: a run killed midway (kill -9, a
  // reboot) stays `running` at its step, and `herald db status` and the doctor say so.
  const id = await startMaintenanceRecord(store, {
    source: options.source,
    startedAt,
    owner: options.owner ?? `${hostname()}:${process.pid}`,
  });
  const progress: Progress = (step) => recordMaintenanceStep(store, id, step, clock.now());
  let summary: Record<string, unknown> = {};
  let error: string | null = null;
  try {
    summary =
      store.dialect === 'sqlite'
        ? await maintainSqlite(store, hooks, options, progress)
        : await maintainPostgres(store, config, hooks, progress);
    return summary;
  } catch (cause) {
    error = describeError(cause);
    throw cause;
  } finally {
    await finishMaintenanceRecord(store, id, { finishedAt: clock.now(), summary, error });
  }
}

async function maintainSqlite(
  store: Store,
  hooks: MaintenanceHooks,
  options: MaintenanceOptions,
  progress: Progress,
): Promise<Record<string, unknown>> {
  const initial = await sqliteSpace(store);
  if (options.convertSqlite) {
    await progress('VACUUM (switching to incremental auto-vacuum)');
    await hooks.log('switching to incremental auto-vacuum: full VACUUM (writers wait until it ends)');
    await sqliteConvertToIncremental(store);
  }
  await progress('ANALYZE');
  await sqliteAnalyze(store);
  await hooks.log('ANALYZE done (analysis_limit 1000)');
  const before = await sqliteSpace(store);
  let chunks = 0;
  if (before.autoVacuum === 2) {
    let free = before.freelistPages;
    while (free > 0) {
      await progress(`incremental vacuum, chunk ${chunks + 1}`);
      await sqliteIncrementalVacuum(store, vacuumChunkPages);
      chunks += 1;
      await hooks.keepAlive();
      const now = (await sqliteSpace(store)).freelistPages;
      if (now >= free) break;
      free = now;
    }
    await sqliteCheckpoint(store);
    await hooks.log(`incremental vacuum: ${before.freelistPages} free pages in ${chunks} chunk(s)`);
  } else {
    // Without auto_vacuum=incremental SQLite keeps free pages in the file and reuses them for new rows.
    await hooks.log(
      `incremental vacuum unavailable (auto_vacuum=${before.autoVacuum === 1 ? 'full' : 'none'}); ${before.freelistPages} free pages will be reused by new rows; ` +
        '`herald db maintain --convert` switches the file to incremental mode once (full VACUUM)',
    );
  }
  const after = await sqliteSpace(store);
  return {
    dialect: 'sqlite',
    analyzed: true,
    autoVacuum: after.autoVacuum === 2 ? 'incremental' : after.autoVacuum === 1 ? 'full' : 'none',
    freelistPagesBefore: initial.freelistPages,
    freelistPagesAfter: after.freelistPages,
    fileBytesBefore: initial.pageCount * initial.pageSize,
    fileBytesAfter: after.pageCount * after.pageSize,
    vacuumChunks: chunks,
  };
}

async function maintainPostgres(
  store: Store,
  config: HeraldConfig,
  hooks: MaintenanceHooks,
  progress: Progress,
): Promise<Record<string, unknown>> {
  // What an earlier REINDEX CONCURRENTLY that failed or was killed left behind goes first.
  await progress('DROP INDEX CONCURRENTLY (invalid copies of earlier reindexes)');
  const copies = await postgresDropInvalidIndexCopies(store);
  for (const index of copies.dropped)
    await hooks.log(`DROP INDEX CONCURRENTLY ${index}: invalid copy left by an earlier REINDEX CONCURRENTLY`);
  for (const { index, error } of copies.failed)
    await hooks.log(
      `invalid index ${index} (left by an earlier REINDEX CONCURRENTLY) could not be dropped now, the next maintenance tries again: ${describeError(error)}`,
    );
  const tables = await existingTables(store, hotTables);
  for (const table of tables) {
    // Announced before it starts: the VACUUM of a big table can take hours.
    await progress(`VACUUM (ANALYZE) ${table}`);
    await hooks.log(`VACUUM (ANALYZE) ${table}`);
    await postgresVacuumAnalyze(store, table, config.database.maintenanceTimeoutMs);
    await hooks.keepAlive();
  }
  const settings = config.workflows.cleanup;
  const reindexed: Array<{ index: string; bytesBefore: number; bloatRatio: number }> = [];
  for (const index of await postgresIndexStats(store)) {
    if (!tables.includes(index.table) || !shouldReindex(index, settings)) continue;
    const { bloatRatio } = estimateIndexBloat(index);
    await hooks.log(
      `REINDEX INDEX CONCURRENTLY ${index.name}: ${index.bytes} bytes, estimated bloat ${Math.round(bloatRatio * 100)}%`,
    );
    await progress(`REINDEX INDEX CONCURRENTLY ${index.name}`);
    await postgresReindexConcurrently(store, index.name, config.database.maintenanceTimeoutMs);
    reindexed.push({ index: index.name, bytesBefore: index.bytes, bloatRatio });
    await hooks.keepAlive();
  }
  return { dialect: 'postgres', droppedInvalidIndexes: copies.dropped, vacuumed: tables, reindexed };
}
