import type { ConfigWarning } from '../config/safety.ts';
import type { DescriptorUse, OpenFileLimit } from './check-open-files.ts';
import type { OutboundStatus } from '../midsourcing/status.ts';
import type { MxStatsView } from '../shaping/stats-view.ts';
import type { DeliveryState } from '../store/tables.ts';
import type { DatabaseStatus } from '../workflows/db-status.ts';
import type { PreparationWarning } from '../delivery/preparation-warnings.ts';

// The facts the doctor checks read: plain data, gathered once by read-snapshot.ts (the only file
// of src/doctor/ that touches the database). Times are epoch milliseconds.

/**
 * The last reply of a group of delivery logs still pending after an attempt, or failed: grouped by
 * status, recipient domain, MX host, reply code, enhanced status and qualification (the largest groups).
 */
export interface ReplyGroup {
  status: 'pending' | 'failed';
  domain: string;
  mxHost: string | null;
  code: number | null;
  enhanced: string | null;
  reason: string | null;
  category: string | null;
  count: number;
  /** One reply text of the group. */
  sample: string;
  lastAt: number;
}

/** What a delivery's content weighs: the template (Liquid not rendered). */
export interface ContentFacts {
  htmlBytes: number;
  textBytes: number;
  /** Tracked links of the HTML template (as preparation stores them). */
  links: number;
  images: number;
}

export interface DeliveryFacts {
  id: number;
  name: string;
  state: DeliveryState;
  /**
   * Why it is listed: `active` (not final), `asked` (named with --delivery), `recent` (final, changed in
   * the last days: looked at for list health, target and preparation problems only).
   */
  scope: 'active' | 'asked' | 'recent';
  /** The affinity (source address pool) it names; null = the default one. */
  affinity: string | null;
  listId: number | null;
  lastError: string | null;
  finishedAt: number | null;
  /** From preparation: recipients read, excluded, and the exclusions by reason. */
  target: { count: number; excluded: number; exclusions: Record<string, number> };
  content: ContentFacts;
  /** The last preparation's warnings (links recipient data made into javascript: and the like); absent: none. */
  preparationWarnings?: PreparationWarning[];
  /** Last replies of the logs pending after an attempt or failed, the largest groups first (active and asked deliveries). */
  replies: ReplyGroup[];
  /** Address events of this delivery's recipients: feedback-loop complaints and unsubscribes. */
  feedback: { complaints: number; unsubscribes: number };
  /** Mid-sourcing: the execution instance it was pushed to (the local MTA does not send it). */
  executionPeer: string | null;
  /** Mid-sourcing, execution side: the marketing peer a `preparing` delivery is being received from
   *  (its parts arrive from there; it is not prepared here). Null otherwise. */
  receivedFrom: { peer: string; sourceDeliveryId: number } | null;
  updatedAt: number;
  scheduledAt: number | null;
  startedAt: number | null;
  validUntil: number | null;
  counts: { total: number; sent: number; failed: number; ignored: number; pending: number; cancelled: number };
  /** Failed delivery logs (status failed) by failure reason. */
  failedByReason: Record<string, number>;
  /** Pending logs whose next attempt is due now. */
  duePending: number;
  /** End of the minute of the last outcome (sent, failed or deferred) of one of its logs; null before any. */
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
  lastFinished: {
    id: number;
    status: 'succeeded' | 'failed' | 'skipped';
    startedAt: number;
    finishedAt: number | null;
    failedStep: number | null;
    error: string | null;
  } | null;
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
  /** When the push was finalized (null while pushing). */
  finalizedAt: number | null;
}

/** The configuration the checked references resolve against (read once, at the edge). */
export interface ConfigurationFacts {
  affinities: Array<{
    name: string;
    addresses: Array<{ address: string; heloName: string; publicId: number; weight: number }>;
  }>;
  /** IP addresses of this machine's interfaces; null when unknown. */
  localAddresses: string[] | null;
  /** DNS servers of the MTA (mta.resolverServers); empty = the system resolver. */
  resolverServers: string[];
  /** Mid-sourcing peers by name (midsourcing.peers). */
  midPeers: string[];
}

/** The stuck-message watchdog's facts: claims per node, and due messages nobody claims. */
export interface MessageFacts {
  claims: Array<{
    node: string;
    claimed: number;
    expired: number;
    oldestClaimedUntil: number | null;
    oldestUpdatedAt: number | null;
  }>;
  /** Per sending delivery: pending messages due for longer than the watchdog's threshold. */
  overdue: Array<{ deliveryId: number; count: number; oldestDueAt: number }>;
}

export interface DoctorSnapshot {
  takenAt: number;
  /** Deliveries that are not final (or the one asked for with --delivery). */
  deliveries: DeliveryFacts[];
  /** Unfinished deliveries older than the newest ones read (unfinishedDeliveries' limit): not checked. */
  deliveriesNotRead?: number;
  /** Merged fresh shaping snapshots of the MTA nodes (as `herald mx stats`). */
  shaping: MxStatsView;
  workflows: WorkflowFacts[];
  tracking: TrackingFacts;
  database: DatabaseStatus;
  retention: RetentionFacts;
  midsourcing: MidOutboundFacts[];
  /** Unsafe settings of the configuration the doctor runs with (src/config/safety.ts). */
  configurationWarnings: ConfigWarning[];
  configuration: ConfigurationFacts;
  messages: MessageFacts;
  /** Event webhook subscriptions (docs/webhooks.md). */
  webhooks: WebhookFacts[];
  /** CSV imports still marked running. */
  imports: ImportFacts[];
  /** The descriptors the roles of `herald start` (`all`, or a list) can hold, and this process's open-file limit; absent: not read. */
  openFiles?: { roles: string; uses: DescriptorUse[]; limit: OpenFileLimit };
}

export interface ImportFacts {
  id: number;
  fileName: string;
  list: string;
  readCount: number;
  startedAt: number;
  /** Last renewal of its liveness lease (every batch, and every third of import.leaseSeconds). */
  updatedAt: number;
}

export interface WebhookFacts {
  id: number;
  url: string;
  state: 'active' | 'paused';
  consecutiveFailures: number;
  lastError: string | null;
  lastSuccessAt: number | null;
  pausedAt: number | null;
  /** Events waiting in the outbox. */
  backlog: number;
}
