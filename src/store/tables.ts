import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

// Row types of every table. Times are integers: milliseconds since the Unix epoch, in both dialects.
// JSON values are stored as text so both dialects read them the same way.

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
  validity_seconds: number;
  /** Set when sending starts: soft failures are retried until then. */
  valid_until: number | null;
  scheduled_at: number | null;
  target_count: Generated<number>;
  excluded_count: Generated<number>;
  /** JSON object: exclusion reason -> count. */
  exclusions: Generated<string>;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  prepared_at: number | null;
  started_at: number | null;
  finished_at: number | null;
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

export interface Database {
  lists: ListTable;
  recipients: RecipientTable;
  imports: ImportTable;
  import_rejects: ImportRejectTable;
  import_rows: ImportRowTable;
  deliveries: DeliveryTable;
  delivery_logs: DeliveryLogTable;
  addresses: AddressTable;
}

export type DeliveryRow = Selectable<DeliveryTable>;
export type NewDelivery = Insertable<DeliveryTable>;
export type DeliveryUpdate = Updateable<DeliveryTable>;
export type DeliveryLogRow = Selectable<DeliveryLogTable>;
export type NewDeliveryLog = Insertable<DeliveryLogTable>;
export type RecipientRow = Selectable<RecipientTable>;
