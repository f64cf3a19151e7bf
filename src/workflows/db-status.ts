import { hostname } from 'node:os';
import type { Store } from '../store/database.ts';
import {
  lastMaintenance,
  postgresIndexStats,
  postgresLockWaits,
  type PostgresLockWait,
  postgresTableSpace,
  sqliteSpace,
  sqliteTableSpace,
  type TableSpaceRow,
} from './maintenance-store.ts';
import { estimateIndexBloat } from './index-bloat.ts';

// `herald db status`: where the space goes. Field names are a stable --json contract.

export interface IndexStatus {
  name: string;
  bytes: number;
  /** Estimated dead fraction: PostgreSQL from catalog statistics, SQLite from unused bytes in its pages. */
  bloatRatio: number | null;
}

export interface TableStatus {
  name: string;
  rows: number;
  rowsEstimated: boolean;
  tableBytes: number;
  indexBytes: number;
  /** indexBytes / tableBytes: indexes far bigger than their table are often bloated or redundant. */
  indexToTableRatio: number | null;
  deadRows: number | null;
  /** PostgreSQL: deadRows / (rows + deadRows); SQLite: unused bytes / table bytes. */
  bloatRatio: number | null;
  lastVacuumAt: string | null;
  lastAnalyzeAt: string | null;
  indexes: IndexStatus[];
}

export interface DatabaseStatus {
  dialect: Store['dialect'];
  location: string;
  sizeBytes: number;
  /** SQLite only: pages on the freelist (reused by new rows, or returned by incremental vacuum). */
  freelistPages: number | null;
  freeBytes: number | null;
  pageSize: number | null;
  autoVacuum: 'none' | 'full' | 'incremental' | null;
  tables: TableStatus[];
  /** PostgreSQL: queries waiting for a lock right now, with the session holding it (empty on SQLite). */
  lockWaits: PostgresLockWait[];
  lastMaintenance: {
    source: string;
    /** `interrupted`: still marked running, and its process on this host is gone (killed midway). */
    state: MaintenanceState;
    /** The step running, or the one an interrupted run stopped at. */
    step: string | null;
    /** `host:pid` of the process that ran it. */
    owner: string | null;
    startedAt: string;
    /** While running or interrupted: its last progress. */
    finishedAt: string;
    durationMs: number;
    error: string | null;
    summary: unknown;
  } | null;
}

export type MaintenanceState = 'running' | 'interrupted' | 'done' | 'failed';

/**
 * A run still marked `running` is interrupted when its process, on this host, no longer exists.
 * On another host it cannot be told from here: it stays `running`.
 */
export function maintenanceState(
  record: { state: 'running' | 'done' | 'failed'; owner: string | null },
  host: string,
  isAlive: (pid: number) => boolean,
): MaintenanceState {
  if (record.state !== 'running') return record.state;
  const [ownerHost, pid] = (record.owner ?? '').split(':');
  return ownerHost === host && pid && !isAlive(Number(pid)) ? 'interrupted' : 'running';
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function databaseStatus(store: Store): Promise<DatabaseStatus> {
  const maintenance = await lastMaintenance(store);
  const lastMaintenanceView = maintenance
    ? {
        source: maintenance.source,
        state: maintenanceState(maintenance, hostname(), processAlive),
        step: maintenance.step,
        owner: maintenance.owner,
        startedAt: iso(maintenance.startedAt),
        finishedAt: iso(maintenance.finishedAt),
        durationMs: maintenance.finishedAt - maintenance.startedAt,
        error: maintenance.error,
        summary: maintenance.summary,
      }
    : null;
  if (store.dialect === 'sqlite') {
    const space = await sqliteSpace(store);
    const { tables, indexes } = await sqliteTableSpace(store);
    return {
      dialect: 'sqlite',
      location: store.location,
      sizeBytes: space.pageCount * space.pageSize,
      freelistPages: space.freelistPages,
      freeBytes: space.freelistPages * space.pageSize,
      pageSize: space.pageSize,
      autoVacuum: space.autoVacuum === 2 ? 'incremental' : space.autoVacuum === 1 ? 'full' : 'none',
      tables: tables.map((t) =>
        tableView(
          t,
          bloatOf(t.tableBytes, () => (t.unusedBytes === null ? null : ratio(t.unusedBytes, t.tableBytes))),
          indexes
            .filter((i) => i.table === t.name)
            .map((i) => ({
              name: i.name,
              bytes: i.bytes,
              bloatRatio: bloatOf(i.bytes, () => (i.unusedBytes === null ? null : ratio(i.unusedBytes, i.bytes))),
            })),
        ),
      ),
      lockWaits: [],
      lastMaintenance: lastMaintenanceView,
    };
  }
  const { tables, databaseBytes } = await postgresTableSpace(store);
  const indexes = await postgresIndexStats(store);
  return {
    dialect: 'postgres',
    location: store.location,
    sizeBytes: databaseBytes,
    freelistPages: null,
    freeBytes: null,
    pageSize: null,
    autoVacuum: null,
    tables: tables.map((t) =>
      tableView(
        t,
        t.deadRows !== null && t.rows + t.deadRows > 0 ? ratio(t.deadRows, t.rows + t.deadRows) : null,
        indexes
          .filter((i) => i.table === t.name)
          .map((i) => ({
            name: i.name,
            bytes: i.bytes,
            bloatRatio: bloatOf(i.bytes, () => estimateIndexBloat(i).bloatRatio),
          })),
      ),
    ),
    lockWaits: await postgresLockWaits(store),
    lastMaintenance: lastMaintenanceView,
  };
}

function tableView(t: TableSpaceRow, bloatRatio: number | null, indexes: IndexStatus[]): TableStatus {
  return {
    name: t.name,
    rows: t.rows,
    rowsEstimated: t.rowsEstimated,
    tableBytes: t.tableBytes,
    indexBytes: t.indexBytes,
    indexToTableRatio: t.tableBytes > 0 ? ratio(t.indexBytes, t.tableBytes) : null,
    deadRows: t.deadRows,
    bloatRatio,
    lastVacuumAt: t.lastVacuumAt === null ? null : iso(t.lastVacuumAt),
    lastAnalyzeAt: t.lastAnalyzeAt === null ? null : iso(t.lastAnalyzeAt),
    indexes,
  };
}

// Below this a ratio says nothing: one half-empty page of a tiny table reads as "50% bloat".
const minBytesForBloat = 1024 * 1024;

function bloatOf(bytes: number, value: () => number | null): number | null {
  return bytes < minBytesForBloat ? null : value();
}

function ratio(part: number, whole: number): number {
  return Math.round((part / whole) * 1000) / 1000;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
