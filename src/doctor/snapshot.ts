import type { OutboundStatus } from '../midsourcing/status.ts';
import type { MxStatsView } from '../shaping/stats-view.ts';
import type { DeliveryState } from '../store/tables.ts';
import type { DatabaseStatus } from '../workflows/db-status.ts';

// The facts the doctor checks read: plain data, gathered once by read-snapshot.ts (the only file
// of src/doctor/ that touches the database). Times are epoch milliseconds.

export interface DeliveryFacts {
  id: number;
  name: string;
  state: DeliveryState;
  /** Mid-sourcing: the execution instance it was pushed to (the local MTA does not send it). */
  executionPeer: string | null;
  updatedAt: number;
  scheduledAt: number | null;
  startedAt: number | null;
  validUntil: number | null;
  counts: { total: number; sent: number; failed: number; ignored: number; pending: number; cancelled: number };
  /** Failed delivery logs (status failed) by failure reason. */
  failedByReason: Record<string, number>;
  /** Pending logs whose next attempt is due now. */
  duePending: number;
  lastLogUpdateAt: number | null;
  /** Pending logs per recipient domain (the largest domains), with the MX hosts seen for the domain in this delivery. */
  pendingByDomain: Array<{ domain: string; pending: number; mxHosts: string[] }>;
}

export interface WorkflowFacts {
  name: string;
  schedule: string;
  /** Typical time between two slots of the schedule. */
  periodMs: number;
  enabled: boolean;
  pausedAt: number | null;
  registeredAt: number;
  lastSuccessAt: number | null;
  /** The latest run that is not running any more. */
  lastFinished: { id: number; status: 'succeeded' | 'failed' | 'skipped'; startedAt: number; finishedAt: number | null; failedStep: number | null; error: string | null } | null;
  /** A run still marked running. */
  running: { id: number; holder: string; startedAt: number } | null;
  lease: { holder: string; expiresAt: number } | null;
}

export interface TrackingFacts {
  /** Id of the last raw event consolidated, and of the last raw event written. */
  watermark: number;
  lastEventId: number;
  /** Time of the oldest raw event not consolidated yet; null when none is waiting. */
  oldestPendingAt: number | null;
}

export interface RetentionFacts {
  /** Delivery logs the cleanup workflow would purge now (final status, final delivery, past retention); counted up to a cap. */
  deliveryLogs: { purgeable: number; capped: boolean; oldestAt: number | null };
  /** Raw tracking events older than their retention: ids and time of the oldest. */
  trackingEvents: { purgeable: number; oldestAt: number | null };
}

export interface MidOutboundFacts {
  status: OutboundStatus;
  pushStartedAt: number | null;
  updatedAt: number;
  /** Last time a part was acknowledged. */
  lastAckAt: number | null;
}

export interface DoctorSnapshot {
  takenAt: number;
  /** Deliveries that are not final (or the one asked for with --delivery). */
  deliveries: DeliveryFacts[];
  /** Merged fresh shaping snapshots of the MTA nodes (as `herald mx stats`). */
  shaping: MxStatsView;
  workflows: WorkflowFacts[];
  tracking: TrackingFacts;
  database: DatabaseStatus;
  retention: RetentionFacts;
  midsourcing: MidOutboundFacts[];
}
