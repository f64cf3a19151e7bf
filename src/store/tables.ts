import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

// Row types of every table, declared here once (one interface per table, all listed in Database).
// Storage files (<area>/*-store.ts) query through them; areas use the column vocabulary
// (DeliveryState, RunStatus, RuleKind…). Times are integers: milliseconds since the Unix epoch, in
// both dialects. JSON values are stored as text so both dialects read them the same way.

export interface ListTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

export interface RecipientTable {
  id: Generated<number>;
  list_id: number;
  email: string;
  domain: string;
  /** Personalization data: JSON object of the CSV's other columns. */
  data: string;
  created_at: number;
  updated_at: number;
}

export interface ImportTable {
  id: Generated<number>;
  list_id: number;
  file_name: string;
  state: 'running' | 'finished' | 'failed';
  read_count: number;
  imported_count: number;
  updated_count: number;
  rejected_count: number;
  error: string | null;
  started_at: number;
  finished_at: number | null;
  /** A running import renews it with each batch; the cleanup workflow fails imports that stopped doing so. */
  updated_at: number | null;
}

export interface ImportRejectTable {
  id: Generated<number>;
  import_id: number;
  line: number;
  reason: string;
  /** The start of the offending record, for the operator to recognise it. */
  excerpt: string;
  /** Human-readable detail of `reason` (a stable code); added by migration 0005. */
  message: string | null;
  created_at: number;
}

/** An import's accepted rows, staged until the whole file is read (migration 0005). */
export interface ImportRowTable {
  id: Generated<number>;
  import_id: number;
  line: number;
  email: string;
  domain: string;
  data: string;
}

export type DeliveryState =
  | 'edited'
  | 'preparing'
  | 'prepared'
  | 'start_pending'
  | 'in_progress'
  | 'finished'
  | 'preparation_failed'
  | 'paused'
  | 'stopped'
  | 'failed'
  | 'deleted';

export interface DeliveryTable {
  id: Generated<number>;
  name: string;
  state: DeliveryState;
  from_address: string;
  from_name: string | null;
  reply_to: string | null;
  subject_template: string;
  html_template: string | null;
  text_template: string | null;
  list_id: number | null;
  affinity: string | null;
  /** Migration 0031: 0–9, higher first on a shared MX path (fair share, src/mta/fair-share.ts). */
  priority: Generated<number>;
  /** Migration 0031: 1–100, the share among deliveries of the same priority on a path. */
  weight: Generated<number>;
  validity_seconds: number;
  /** Set when sending starts: soft failures are retried until then. */
  valid_until: number | null;
  scheduled_at: number | null;
  target_count: Generated<number>;
  excluded_count: Generated<number>;
  /** JSON object: exclusion reason -> count. */
  exclusions: Generated<string>;
  /** Migration 0038: JSON array of the last preparation's warnings (delivery/preparation-warnings.ts). */
  preparation_warnings: Generated<string>;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  prepared_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  /** Mid-sourcing (migration 0008): the execution instance a pushed delivery was handed to. */
  execution_peer: string | null;
  /** Migration 0039: the random id of the preparation holding a `preparing` delivery (delivery/preparation.ts). */
  preparation_owner: Generated<string | null>;
}

/** `sending` is the in-flight claim of one MTA; it never survives a clean stop. */
export type DeliveryLogStatus = 'pending' | 'sending' | 'sent' | 'failed' | 'ignored' | 'cancelled';

export interface DeliveryLogTable {
  id: Generated<number>;
  delivery_id: number;
  recipient_id: number | null;
  email: string;
  domain: string;
  data: string;
  status: DeliveryLogStatus;
  attempts: number;
  next_attempt_at: number;
  claimed_by: string | null;
  claimed_until: number | null;
  last_reply_code: number | null;
  last_enhanced_status: string | null;
  last_reply_text: string | null;
  failure_type: 'hard' | 'soft' | 'ignored' | null;
  failure_reason: string | null;
  failure_category: string | null;
  mx_host: string | null;
  sent_at: number | null;
  updated_at: number;
  /** Mid-sourcing (migration 0008), execution side: the log's id on the marketing instance. */
  source_log_id: number | null;
  /**
   * Migration 0021: the address as preparation compares addresses (case folded); unique per delivery.
   * Migration 0032: the email as received for mid-sourcing parts and logs written before 0021.
   */
  address_key: Generated<string | null>;
}

export type AddressState = 'valid' | 'with_errors' | 'quarantined' | 'denylisted' | 'allowlisted';

export interface AddressTable {
  email: string;
  state: AddressState;
  error_count: number;
  last_error_at: number | null;
  reason: string | null;
  updated_at: number;
}

// --- workflows (migration 0002) ---------------------------------------------------------------

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'skipped';
export type RunTrigger = 'schedule' | 'manual' | 'restart';
export type StepStatus = 'running' | 'succeeded' | 'failed' | 'skipped';

export interface WorkflowTable {
  name: string;
  paused_at: number | null;
  last_due_at: number | null;
  lease_holder: string | null;
  lease_expires_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface WorkflowRunTable {
  id: Generated<number>;
  workflow: string;
  status: RunStatus;
  trigger: RunTrigger;
  holder: string;
  scheduled_for: number | null;
  missed_slots: number;
  start_step: number;
  restart_of: number | null;
  failed_step: number | null;
  error: string | null;
  started_at: number;
  finished_at: number | null;
}

export interface WorkflowStepTable {
  id: Generated<number>;
  run_id: number;
  step_index: number;
  name: string;
  status: StepStatus;
  summary: string | null;
  error: string | null;
  started_at: number;
  finished_at: number | null;
}

export interface WorkflowStepLogTable {
  id: Generated<number>;
  run_id: number;
  step_index: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  at: number;
}

export interface DeliveryDelayTable {
  delivery_id: number;
  last_progress_at: number;
  flagged_at: number;
}

export interface DeliveryStatsHourlyTable {
  hour: number;
  delivery_id: number;
  domain: string;
  mx_host: string;
  sent: number;
  failed: number;
  deferred: number;
  updated_at: number;
}

export interface DbMaintenanceTable {
  id: Generated<number>;
  source: string;
  started_at: number;
  /** While running: the last progress. */
  finished_at: number;
  summary: string;
  error: string | null;
  /** `running` from the start until it ends `done` or `failed` (migration 0036). */
  state: Generated<'running' | 'done' | 'failed'>;
  /** The step running, or the last one reached. */
  step: string | null;
  /** `host:pid` of the process running it. */
  owner: string | null;
}

// --- shaping (migration 0004) -----------------------------------------------------------------

export interface ShapingSnapshotTable {
  node_id: string;
  taken_at: number;
  rules_version: string;
  data: string;
}

// --- quarantine (migration 0006) --------------------------------------------------------------

export interface AddressEventTable {
  id: Generated<number>;
  email: string;
  at: number;
  source: string;
  delivery_id: number | null;
  delivery_log_id: number | null;
  reply_text: string | null;
  category: string | null;
  reason: string | null;
  type: string | null;
  rule_id: string | null;
  pack_version: string | null;
  state_before: string;
  state_after: string;
  error_count: number;
  counted: number;
  note: string | null;
}

// --- bounce qualification and the inbound role (migration 0006) ---------------------------------

export type QualificationStatus = 'to_qualify' | 'keep' | 'ignore';

export interface QualificationEntryTable {
  id: Generated<number>;
  signature: string;
  source: string;
  reply_code: number | null;
  enhanced_status: string | null;
  pattern: string;
  example: string;
  example_log_id: number | null;
  count: number;
  first_seen_at: number;
  last_seen_at: number;
  status: QualificationStatus;
  rule_id: string | null;
  category: string | null;
  updated_at: number;
}

export interface InboundSampleTable {
  id: Generated<number>;
  received_at: number;
  problem: string;
  detail: string;
  remote_address: string | null;
  mail_from: string | null;
  rcpt_to: string | null;
  size: number;
  truncated: number;
  raw: string;
}

/** Migration 0022: each received message applied once, by identity (see bounce/inbound-identity.ts). */
export interface InboundMessageTable {
  identity: string;
  received_at: number;
}

export interface InboundCounterTable {
  name: string;
  count: number;
  last_at: number;
}

// --- tracking (migration 0007) ----------------------------------------------------------------

/** One trackable link of a delivery's HTML template, in document order (extracted at preparation). */
export interface TrackingLinkTable {
  delivery_id: number;
  link_index: number;
  /** The href value as written in the template (Liquid allowed, HTML entities not decoded). */
  url_template: string;
  /** The link's visible text, tags stripped, for reports. */
  label: string;
}

export type TrackingEventKind = 'open' | 'click' | 'mirror' | 'unsubscribe';

/** The raw tracking log: append-only, written in batches by the tracking server. */
export interface TrackingEventTable {
  id: Generated<number>;
  delivery_id: number;
  log_id: number;
  kind: TrackingEventKind;
  /** Click events: the link's index in tracking_links; otherwise null. */
  link_index: number | null;
  at: number;
  /** Bit set of automatedFlags (0 = looks human). */
  flags: number;
  user_agent: string | null;
}

/** Signing keys generated by Herald when none is configured (secrets never leave the database). */
export interface TrackingKeyTable {
  id: string;
  secret: string;
  created_at: number;
}

/** Consolidated indicators of one delivery; scope `all` counts every event, `human` leaves flagged ones out. */
export interface TrackingIndicatorTable {
  delivery_id: number;
  scope: 'all' | 'human';
  sent: number;
  unique_opens: number;
  total_opens: number;
  estimated_opens: number;
  unique_clickers: number;
  total_clicks: number;
  opt_outs: number;
  mirror_views: number;
  /** unique clickers / estimated opens (0 when nobody opened). */
  reactivity: number;
  computed_at: number;
}

export interface TrackingLinkStatTable {
  delivery_id: number;
  scope: 'all' | 'human';
  link_index: number;
  clicks: number;
  clickers: number;
}

export interface TrackingDomainStatTable {
  delivery_id: number;
  scope: 'all' | 'human';
  domain: string;
  sent: number;
  openers: number;
  clickers: number;
  clicks: number;
  opt_outs: number;
}

/** Single-row watermark of the consolidation (the last raw event id already consolidated). */
export interface TrackingStateTable {
  name: string;
  value: number;
}

// --- mid-sourcing (migrations 0008, 0011, 0014) -----------------------------------------------

export interface MidInboundDeliveryTable {
  delivery_id: number;
  peer: string;
  source_delivery_id: number;
  parts_expected: number;
  recipients_expected: number;
  finalized_at: number | null;
  created_at: number;
  /** Highest state-change version recorded (migration 0011); requests at or below it change nothing. */
  state_version: number;
  /** The target state of that version (applied at finalize when received before). */
  state_target: string | null;
  /** Highest cursor the peer sent with a logs request: every change at or below it is applied there. */
  read_cursor: number;
  read_at: number | null;
}

export interface MidInboundStateChangeTable {
  delivery_id: number;
  version: number;
  target: string;
  from_state: string;
  outcome: 'applied' | 'already' | 'held' | 'final' | 'superseded';
  received_at: number;
  applied_at: number | null;
}

export interface MidInboundPartTable {
  delivery_id: number;
  part_number: number;
  part_key: string;
  recipients: number;
  inserted: number;
  received_at: number;
}

export interface MidLogChangeTable {
  id: number;
  delivery_id: number;
  log_id: number;
  seq: number | null;
  /** When the change was published (given its seq); null while unpublished. */
  published_at: number | null;
}

export interface MidOutboundDeliveryTable {
  delivery_id: number;
  peer: string;
  remote_id: number | null;
  state: 'pushing' | 'finalized';
  parts_total: number;
  recipients: number;
  log_cursor: number;
  logs_complete: number;
  logs_synced_at: number | null;
  logs_applied: number;
  remote_state: string | null;
  counters: string | null;
  counters_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
  push_started_at: number | null;
  finalized_at: number | null;
  created_at: number;
  updated_at: number;
  /** Forwarded operator state changes (migration 0011): the latest version and its target state. */
  state_version: number;
  state_target: string | null;
  state_changed_at: number | null;
  /** The highest version the execution side acknowledged, what it did and its state then. */
  state_acked_version: number;
  state_acked_at: number | null;
  state_outcome: string | null;
  state_remote: string | null;
  /** Attempts to forward the latest version, and the last error of those attempts. */
  state_attempts: number;
  state_error: string | null;
}

export interface MidOutboundPartTable {
  delivery_id: number;
  part_number: number;
  first_log_id: number;
  last_log_id: number;
  recipients: number;
  state: 'pending' | 'acked';
  part_key: string | null;
  bytes: number | null;
  attempts: number;
  timeouts: number;
  build_ms: number | null;
  latency_ms: number | null;
  last_error: string | null;
  acked_at: number | null;
  updated_at: number;
}

/** A running MTA process and the node id it claims under (migration 0017). */
export interface MtaNodeTable {
  node_id: string;
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
}

export interface MidSeenRequestTable {
  peer: string;
  nonce: string;
  seen_at: number;
}

// --- rule-pack versions (migration 0009) ------------------------------------------------------

export type RuleKind = 'mx' | 'bounce';

export interface RuleVersionTable {
  id: Generated<number>;
  kind: RuleKind;
  /** Short content hash (sha256, 16 hex). */
  version: string;
  content: string;
  /** The file or URL it was loaded from. */
  source: string;
  /** JSON: { added, removed, changed } names against the version it replaced. */
  diff: string;
  /** The version that was active when this one was created (what rollback returns to). */
  replaces_id: number | null;
  active: number;
  created_at: number;
  activated_at: number | null;
}

// --- HTTP API (migration 0015) ----------------------------------------------------------------

export type ApiRole = 'viewer' | 'operator' | 'admin';

export interface ApiTokenTable {
  id: Generated<number>;
  /** Public part of the token (`herald_<token_id>_<secret>`): listed, used to revoke. */
  token_id: string;
  name: string;
  role: ApiRole;
  /** SHA-256 (hex) of the whole token; the token itself is shown once and never stored. */
  secret_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** One row per state-changing API call: who (token), what (method, route, path), when, result. */
export interface ApiAuditTable {
  id: Generated<number>;
  at: number;
  token_id: string | null;
  role: ApiRole | null;
  method: string;
  route: string;
  path: string;
  status: number;
  error_code: string | null;
  client: string | null;
}

/** An Idempotency-Key a token sent with a create (migration 0042): the retry answers with what it created. */
export interface ApiIdempotencyKeyTable {
  id: Generated<number>;
  token_id: string;
  idempotency_key: string;
  /** The operationId of the route it was sent to. */
  route: string;
  /** SHA-256 (hex) of the JSON body: the same key with another body is refused. */
  request_hash: string;
  /** The id of what the first request created (a delivery). */
  resource_id: number;
  created_at: number;
}

// --- dashboard sessions (migration 0026) ----------------------------------------------------------

/** A signed-in browser: the SHA-256 (hex) of its cookie's session id, the API token it signed in with. */
export interface WebSessionTable {
  id: Generated<number>;
  session_hash: string;
  token_id: string;
  /** Carried by every form and htmx request of the session (not a secret from the page itself). */
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

// --- event webhooks (migration 0018) -------------------------------------------------------------

export type WebhookKind =
  | 'delivery.state'
  | 'workflow.failed'
  | 'message.sent'
  | 'message.failed'
  | 'message.bounced'
  | 'message.complained'
  | 'message.unsubscribed'
  | 'message.opened'
  | 'message.clicked';

export interface WebhookSubscriptionTable {
  id: Generated<number>;
  url: string;
  /** JSON array of WebhookKind. */
  events: string;
  /** HMAC-SHA256 key of the signatures (shown once, at creation or rotation). */
  secret: string;
  /** The secret before the last rotation: it signs too until `previous_secret_until` (migration 0040). */
  previous_secret: string | null;
  previous_secret_until: number | null;
  /** The dispatcher sending to it now, until `dispatch_until` (migration 0041). */
  dispatch_holder: Generated<string | null>;
  dispatch_until: Generated<number | null>;
  state: 'active' | 'paused';
  consecutive_failures: Generated<number>;
  last_error: string | null;
  last_success_at: number | null;
  paused_at: number | null;
  created_at: number;
}

/** Written by triggers in the transaction of the change reported (migrations 0018, 0023). */
export interface WebhookOutboxTable {
  id: Generated<number>;
  subscription_id: number;
  kind: WebhookKind;
  /** JSON object. */
  payload: string;
  created_at: number;
  attempts: Generated<number>;
  next_attempt_at: number;
  delivered_at: number | null;
}

/** Logs per delivery and key, kept by triggers on delivery_logs (migration 0028); `sending` counted as `pending`. */
export interface DeliveryLogCountTable {
  delivery_id: number;
  status: DeliveryLogStatus;
  /** '' when the log has none. */
  failure_reason: string;
  /** 1: attempts > 1. */
  retried: number;
  n: number;
}

/** Logs sent, failed and deferred per delivery and minute, kept by triggers (migration 0029). */
export interface DeliveryMinuteCountTable {
  delivery_id: number;
  outcome: 'sent' | 'failed' | 'deferred';
  /** Minutes since the epoch (ms / 60000, rounded down). */
  minute: number;
  n: number;
}

/** Failed logs per delivery and failure key, kept by triggers (migration 0029); '' where a log has none. */
export interface DeliveryFailureCountTable {
  delivery_id: number;
  failure_type: string;
  failure_reason: string;
  failure_category: string;
  domain: string;
  mx_host: string;
  n: number;
}

/**
 * Migration 0033: a delivery's logs by recipient domain, outcome (`pending` never tried, `deferred`
 * pending after an attempt, `sent`, `failed`) and MX host ('' for none); PostgreSQL sums delta rows.
 */
export interface DeliveryDomainCountTable {
  delivery_id: number;
  domain: string;
  outcome: 'pending' | 'deferred' | 'sent' | 'failed';
  mx_host: string;
  n: number;
}

/** One-time dashboard sign-in codes (migration 0030): only the code's SHA-256 is kept. */
export interface WebSignInCodeTable {
  code_hash: string;
  token_id: string;
  created_at: number;
  expires_at: number;
}

/** Every table, as Kysely sees it: the one declaration of the schema's row types. */
export interface Database {
  lists: ListTable;
  recipients: RecipientTable;
  imports: ImportTable;
  import_rejects: ImportRejectTable;
  import_rows: ImportRowTable;
  deliveries: DeliveryTable;
  delivery_logs: DeliveryLogTable;
  delivery_log_counts: DeliveryLogCountTable;
  delivery_minute_counts: DeliveryMinuteCountTable;
  delivery_failure_counts: DeliveryFailureCountTable;
  delivery_domain_counts: DeliveryDomainCountTable;
  web_sign_in_codes: WebSignInCodeTable;
  addresses: AddressTable;
  workflows: WorkflowTable;
  workflow_runs: WorkflowRunTable;
  workflow_steps: WorkflowStepTable;
  workflow_step_logs: WorkflowStepLogTable;
  delivery_delays: DeliveryDelayTable;
  delivery_stats_hourly: DeliveryStatsHourlyTable;
  db_maintenance: DbMaintenanceTable;
  shaping_snapshots: ShapingSnapshotTable;
  address_events: AddressEventTable;
  qualification_entries: QualificationEntryTable;
  inbound_samples: InboundSampleTable;
  inbound_counters: InboundCounterTable;
  inbound_messages: InboundMessageTable;
  tracking_links: TrackingLinkTable;
  tracking_events: TrackingEventTable;
  tracking_keys: TrackingKeyTable;
  tracking_indicators: TrackingIndicatorTable;
  tracking_link_stats: TrackingLinkStatTable;
  tracking_domain_stats: TrackingDomainStatTable;
  tracking_state: TrackingStateTable;
  mid_inbound_deliveries: MidInboundDeliveryTable;
  mid_inbound_parts: MidInboundPartTable;
  mid_inbound_state_changes: MidInboundStateChangeTable;
  mid_log_changes: MidLogChangeTable;
  mid_outbound_deliveries: MidOutboundDeliveryTable;
  mid_outbound_parts: MidOutboundPartTable;
  mid_seen_requests: MidSeenRequestTable;
  mta_nodes: MtaNodeTable;
  rule_versions: RuleVersionTable;
  api_tokens: ApiTokenTable;
  api_audit: ApiAuditTable;
  api_idempotency_keys: ApiIdempotencyKeyTable;
  web_sessions: WebSessionTable;
  webhook_subscriptions: WebhookSubscriptionTable;
  webhook_outbox: WebhookOutboxTable;
}

export type DeliveryRow = Selectable<DeliveryTable>;
export type NewDelivery = Insertable<DeliveryTable>;
export type DeliveryUpdate = Updateable<DeliveryTable>;
export type DeliveryLogRow = Selectable<DeliveryLogTable>;
export type NewDeliveryLog = Insertable<DeliveryLogTable>;
export type RecipientRow = Selectable<RecipientTable>;
export type WorkflowRow = Selectable<WorkflowTable>;
export type WorkflowRunRow = Selectable<WorkflowRunTable>;
export type WorkflowStepRow = Selectable<WorkflowStepTable>;
export type WorkflowStepLogRow = Selectable<WorkflowStepLogTable>;
export type AddressEventRow = Selectable<AddressEventTable>;
export type QualificationEntryRow = Selectable<QualificationEntryTable>;
export type InboundSampleRow = Selectable<InboundSampleTable>;
export type TrackingIndicatorRow = Selectable<TrackingIndicatorTable>;
export type RuleVersionRow = Selectable<RuleVersionTable>;
export type ApiTokenRow = Selectable<ApiTokenTable>;
export type ApiAuditRow = Selectable<ApiAuditTable>;
export type ApiIdempotencyKeyRow = Selectable<ApiIdempotencyKeyTable>;
export type WebSessionRow = Selectable<WebSessionTable>;
export type WebhookSubscriptionRow = Selectable<WebhookSubscriptionTable>;
export type WebhookOutboxRow = Selectable<WebhookOutboxTable>;
