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
  /** Messages (delivery logs or recipients) the finding is about, when it can be counted: `--delivery` orders by it. */
  impact?: number;
  /** The command that lists the delivery logs showing it (`herald delivery logs N --…`). */
  logs?: string;
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
  /** import.leaseSeconds: a running import not renewed for this long lost its process. */
  importDeadAfterMinutes: number;
  /** delivery.preparationLeaseSeconds: a `preparing` delivery not renewed for this long lost its process (a live one renews every third of it). */
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
  /** Final deliveries changed within this many days are still checked for list health, target and preparation. */
  recentDays: number;
  /** A cause seen on fewer messages of a delivery than this is left out (one odd reply is not a diagnosis). */
  replyMinMessages: number;
  /**
   * Unreachable hosts and temporary DNS failures below this share of a delivery's messages are info:
   * every real list holds a few dead domains; a destination that matters is a larger share.
   */
  replyWarningShare: number;
  /** Feedback-loop complaints over sent messages: the mailbox providers' published thresholds (Gmail, Yahoo: 0.1 % / 0.3 %). */
  complaintWarningRatio: number;
  complaintCriticalRatio: number;
  /** Fewer sent messages than this say nothing about complaint or unsubscribe rates. */
  feedbackMinSent: number;
  /** Unsubscribes over sent messages at or above these fractions (a spike: list fatigue, unexpected content). */
  unsubscribeWarningRatio: number;
  unsubscribeCriticalRatio: number;
  /** Exclusions of a target at or above these shares are reported. */
  targetBlockedWarningRatio: number;
  targetDuplicateWarningRatio: number;
  targetInvalidWarningRatio: number;
  /** Content: HTML above this many bytes (Gmail clips messages above ~102 KB), more links or images than these. */
  contentHtmlMaxBytes: number;
  contentMaxLinks: number;
  contentMaxImages: number;
  /** A technical workflow paused longer than this: warning; longer than workflows.pausedTooLongDays: critical. */
  workflowPausedWarningHours: number;
  workflowPausedCriticalDays: number;
  /** Mid-sourcing: an average part build or append time at or above this is slow. */
  midSlowPartMs: number;
  /** Watchdog: a claim expired this long ago and not taken back; a claim held (renewed) this long. */
  claimExpiredGraceMinutes: number;
  claimHeldTooLongMinutes: number;
  /** Watchdog: pending messages due for longer than this in a delivery sending. */
  overdueMessagesHours: number;
}

export function doctorSettings(config: HeraldConfig): DoctorSettings {
  const cleanup = config.workflows.cleanup;
  return {
    preparingStuckMinutes: config.delivery.preparationLeaseSeconds / 60,
    importDeadAfterMinutes: config.import.leaseSeconds / 60,
    startPendingLateMinutes: 15,
    stalledAfterMinutes: config.workflows.delayedAfterMinutes,
    hardBounceWarningRatio: 0.05,
    hardBounceCriticalRatio: 0.1,
    hardBounceMinAttempts: 100,
    trackingLagWarningMinutes: 120,
    trackingLagCriticalMinutes: 24 * 60,
    retention: {
      deliveryLogsDays: cleanup.deliveryLogsDays,
      trackingLogsDays: cleanup.trackingLogsDays,
      workflowHistoryDays: config.workflows.historyDays,
    },
    purgeGraceDays: 2,
    bloatRatio: cleanup.reindexBloatRatio,
    bloatMinBytes: cleanup.reindexMinBytes,
    sqliteFreeRatio: 0.25,
    midStalledMinutes: 30,
    shapingSnapshotMaxAgeSeconds: 300,
    recentDays: 3,
    replyMinMessages: 10,
    replyWarningShare: 0.05,
    complaintWarningRatio: 0.001,
    complaintCriticalRatio: 0.003,
    feedbackMinSent: 200,
    unsubscribeWarningRatio: 0.01,
    unsubscribeCriticalRatio: 0.03,
    targetBlockedWarningRatio: 0.1,
    targetDuplicateWarningRatio: 0.05,
    targetInvalidWarningRatio: 0.05,
    contentHtmlMaxBytes: 102 * 1024,
    contentMaxLinks: 40,
    contentMaxImages: 25,
    workflowPausedWarningHours: 24,
    workflowPausedCriticalDays: config.workflows.pausedTooLongDays,
    midSlowPartMs: 5_000,
    claimExpiredGraceMinutes: 5,
    // Three leases: a healthy MTA finishes (or gives back) what it claimed well within one.
    claimHeldTooLongMinutes: Math.max(30, Math.round((3 * config.mta.claimLeaseSeconds) / 60)),
    overdueMessagesHours: 6,
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
  if (ms < minuteMs) return `${Math.max(0, Math.round(ms / 1000))} s`;
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
