import type { HeraldConfig } from '../config/schema.ts';
import type { DoctorSnapshot } from './snapshot.ts';

// What every doctor check returns: one finding per problem, in words an operator can act on, with
// the numbers that prove it. Field names are a stable --json contract: add fields, never rename.

export type Severity = 'critical' | 'warning' | 'info';

export interface Finding {
  /** The check that produced it (a file of src/doctor/, e.g. "workflows"). */
  check: string;
  severity: Severity;
  /** What it is about: "delivery 12", "workflow tracking", "mx rule gmail", "table delivery_logs". */
  subject: string;
  symptom: string;
  cause: string;
  /** The exact command to run or configuration key to change. */
  fix: string;
  evidence: Record<string, unknown>;
}

/** A check: pure, over the snapshot, with time and settings passed in. */
export interface DoctorCheck {
  name: string;
  /** One line for docs and `--json`: what it looks at. */
  description: string;
  run(snapshot: DoctorSnapshot, now: number, settings: DoctorSettings): Finding[];
}

/** Thresholds of the checks; most derive from the configuration the checked behaviour runs under. */
export interface DoctorSettings {
  /** A delivery in `preparing` longer than this is presumed abandoned (the preparing process died). */
  preparingStuckMinutes: number;
  /** A `start_pending` delivery this long past its scheduled time was not started by delivery-manager. */
  startPendingLateMinutes: number;
  /** workflows.delayedAfterMinutes: an in-progress delivery with due messages and no log update for this long is stalled. */
  stalledAfterMinutes: number;
  /** Hard bounces (user_unknown, invalid_domain) over attempted messages at or above these fractions. */
  hardBounceWarningRatio: number;
  hardBounceCriticalRatio: number;
  /** Fewer attempted messages than this say nothing about list quality. */
  hardBounceMinAttempts: number;
  /** Raw tracking events older than this and not consolidated: the tracking workflow lags. */
  trackingLagWarningMinutes: number;
  trackingLagCriticalMinutes: number;
  /** Retention of the purged data, from workflows.cleanup / workflows.historyDays. */
  retention: { deliveryLogsDays: number; trackingLogsDays: number; workflowHistoryDays: number };
  /** Data this many days past its retention means cleanup does not purge (it runs daily). */
  purgeGraceDays: number;
  /** Table or index dead fraction at or above this, on objects at least bloatMinBytes big. */
  bloatRatio: number;
  bloatMinBytes: number;
  /** SQLite free pages over file size at or above this (and at least bloatMinBytes). */
  sqliteFreeRatio: number;
  /** A mid-sourcing push or state change with no progress for this long is stalled. */
  midStalledMinutes: number;
  /** Shaping snapshots older than this come from stopped MTA nodes. */
  shapingSnapshotMaxAgeSeconds: number;
}

export function doctorSettings(config: HeraldConfig): DoctorSettings {
  const cleanup = config.workflows.cleanup;
  return {
    preparingStuckMinutes: 60,
    startPendingLateMinutes: 15,
    stalledAfterMinutes: config.workflows.delayedAfterMinutes,
    hardBounceWarningRatio: 0.05,
    hardBounceCriticalRatio: 0.1,
    hardBounceMinAttempts: 100,
    trackingLagWarningMinutes: 120,
    trackingLagCriticalMinutes: 24 * 60,
    retention: { deliveryLogsDays: cleanup.deliveryLogsDays, trackingLogsDays: cleanup.trackingLogsDays, workflowHistoryDays: config.workflows.historyDays },
    purgeGraceDays: 2,
    bloatRatio: cleanup.reindexBloatRatio,
    bloatMinBytes: cleanup.reindexMinBytes,
    sqliteFreeRatio: 0.25,
    midStalledMinutes: 30,
    shapingSnapshotMaxAgeSeconds: 300,
  };
}

export const minuteMs = 60_000;
export const hourMs = 3_600_000;
export const dayMs = 86_400_000;

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** "3 h 20 min", "45 min", "2 d 4 h": durations in findings. */
export function duration(ms: number): string {
  const minutes = Math.max(0, Math.round(ms / minuteMs));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days} d` : `${days} d ${hours % 24} h`;
}

export function percent(fraction: number): string {
  return `${Math.round(fraction * 1000) / 10}%`;
}
