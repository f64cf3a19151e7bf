import { sql, type Generated, type Kysely, type Selectable } from 'kysely';
import type { Store } from './database.ts';
import type { Database } from './tables.ts';

// Bounce qualification storage: the table of reply shapes no rule matched (counted, with a first
// example), the inbound role's samples and counters, and the updates a bounce mail makes to the
// delivery log it is about.

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

export interface InboundCounterTable {
  name: string;
  count: number;
  last_at: number;
}

export type QualificationTables = {
  qualification_entries: QualificationEntryTable;
  inbound_samples: InboundSampleTable;
  inbound_counters: InboundCounterTable;
};

export type QualificationEntryRow = Selectable<QualificationEntryTable>;
export type InboundSampleRow = Selectable<InboundSampleTable>;

export function qualificationDb(store: Store): Kysely<Database & QualificationTables> {
  return store.db.withTables<QualificationTables>();
}

/** Occurrences of one reply shape, aggregated in memory before they are written. */
export interface UnmatchedReply {
  signature: string;
  source: 'smtp' | 'bounce';
  code: number | null;
  enhancedStatus: string | null;
  pattern: string;
  example: string;
  exampleLogId: number | null;
  count: number;
  firstSeenAt: number;
  lastSeenAt: number;
}

const MAX_EXAMPLE = 2_000;
const CHUNK = 200;

/** Adds occurrences: new shapes become `to_qualify` entries; known ones only have their count and last time raised. */
export async function recordUnmatchedReplies(store: Store, replies: readonly UnmatchedReply[], now: number): Promise<void> {
  if (replies.length === 0) return;
  const db = qualificationDb(store);
  const greatest = store.dialect === 'postgres' ? sql.raw('greatest') : sql.raw('max');
  for (let i = 0; i < replies.length; i += CHUNK) {
    const rows = replies.slice(i, i + CHUNK).map((r) => ({
      signature: r.signature,
      source: r.source,
      reply_code: r.code,
      enhanced_status: r.enhancedStatus,
      pattern: r.pattern,
      example: r.example.slice(0, MAX_EXAMPLE),
      example_log_id: r.exampleLogId,
      count: r.count,
      first_seen_at: r.firstSeenAt,
      last_seen_at: r.lastSeenAt,
      status: 'to_qualify' as const,
      rule_id: null,
      category: null,
      updated_at: now,
    }));
    await db
      .insertInto('qualification_entries')
      .values(rows)
      .onConflict((oc) =>
        oc.column('signature').doUpdateSet({
          count: sql`qualification_entries.count + excluded.count`,
          last_seen_at: sql`${greatest}(qualification_entries.last_seen_at, excluded.last_seen_at)`,
          updated_at: sql`excluded.updated_at`,
        }),
      )
      .execute();
  }
}

export async function listQualificationEntries(store: Store, options: { status?: QualificationStatus | 'all'; limit?: number } = {}): Promise<QualificationEntryRow[]> {
  let query = qualificationDb(store).selectFrom('qualification_entries').selectAll();
  const status = options.status ?? 'to_qualify';
  if (status !== 'all') query = query.where('status', '=', status);
  const rows = await query.orderBy('count', 'desc').orderBy('id').limit(options.limit ?? 100).execute();
  return rows.map(normalizeEntry);
}

export async function getQualificationEntry(store: Store, id: number): Promise<QualificationEntryRow | undefined> {
  const row = await qualificationDb(store).selectFrom('qualification_entries').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? normalizeEntry(row) : undefined;
}

export async function markQualificationEntry(store: Store, id: number, update: { status: QualificationStatus; ruleId?: string | null; category?: string | null }, now: number): Promise<void> {
  await qualificationDb(store)
    .updateTable('qualification_entries')
    .set({ status: update.status, rule_id: update.ruleId ?? null, category: update.category ?? null, updated_at: now })
    .where('id', '=', id)
    .execute();
}

function normalizeEntry(row: QualificationEntryRow): QualificationEntryRow {
  return {
    ...row,
    id: Number(row.id),
    count: Number(row.count),
    first_seen_at: Number(row.first_seen_at),
    last_seen_at: Number(row.last_seen_at),
    example_log_id: row.example_log_id === null ? null : Number(row.example_log_id),
  };
}

// ---- inbound: counters and samples -----------------------------------------------------------

export async function countInbound(store: Store, names: readonly string[], now: number): Promise<void> {
  if (names.length === 0) return;
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  await qualificationDb(store)
    .insertInto('inbound_counters')
    .values([...counts].map(([name, count]) => ({ name, count, last_at: now })))
    .onConflict((oc) => oc.column('name').doUpdateSet({ count: sql`inbound_counters.count + excluded.count`, last_at: sql`excluded.last_at` }))
    .execute();
}

export async function inboundCounters(store: Store): Promise<Record<string, number>> {
  const rows = await qualificationDb(store).selectFrom('inbound_counters').selectAll().orderBy('name').execute();
  return Object.fromEntries(rows.map((row) => [row.name, Number(row.count)]));
}

export interface NewInboundSample {
  receivedAt: number;
  problem: string;
  detail: string;
  remoteAddress: string | null;
  mailFrom: string | null;
  rcptTo: string | null;
  size: number;
  /** The first bytes of the message (the caller truncates). */
  raw: Uint8Array;
}

/** Stores a sample and keeps only the newest `keep` (the table is bounded whatever arrives). */
export async function storeInboundSample(store: Store, sample: NewInboundSample, keep: number): Promise<void> {
  const db = qualificationDb(store);
  await db
    .insertInto('inbound_samples')
    .values({
      received_at: sample.receivedAt,
      problem: sample.problem,
      detail: sample.detail.slice(0, 1_000),
      remote_address: sample.remoteAddress,
      mail_from: sample.mailFrom?.slice(0, 500) ?? null,
      rcpt_to: sample.rcptTo?.slice(0, 1_000) ?? null,
      size: sample.size,
      truncated: sample.raw.length < sample.size ? 1 : 0,
      // Bytes that are not UTF-8 become U+FFFD: a sample is for reading, not for replaying.
      raw: new TextDecoder('utf-8', { fatal: false }).decode(sample.raw).replace(/\0/g, ''),
    })
    .execute();
  const cutoff = await db.selectFrom('inbound_samples').select('id').orderBy('id', 'desc').offset(keep).limit(1).executeTakeFirst();
  if (cutoff) await db.deleteFrom('inbound_samples').where('id', '<=', cutoff.id).execute();
}

export async function listInboundSamples(store: Store, limit = 50): Promise<InboundSampleRow[]> {
  const rows = await qualificationDb(store).selectFrom('inbound_samples').selectAll().orderBy('id', 'desc').limit(limit).execute();
  return rows.map((row) => ({ ...row, id: Number(row.id), received_at: Number(row.received_at), size: Number(row.size) }));
}

// ---- delivery logs touched by bounce mails ---------------------------------------------------

export interface BouncedLog {
  id: number;
  deliveryId: number;
  email: string;
  status: string;
}

export async function findLogForBounce(store: Store, logId: number): Promise<BouncedLog | undefined> {
  const row = await store.db.selectFrom('delivery_logs').select(['id', 'delivery_id', 'email', 'status']).where('id', '=', logId).executeTakeFirst();
  return row ? { id: Number(row.id), deliveryId: Number(row.delivery_id), email: row.email, status: row.status } : undefined;
}

export async function logsForOutcomes(store: Store, logIds: readonly number[]): Promise<Map<number, { deliveryId: number; email: string }>> {
  const out = new Map<number, { deliveryId: number; email: string }>();
  for (let i = 0; i < logIds.length; i += 1_000) {
    const rows = await store.db.selectFrom('delivery_logs').select(['id', 'delivery_id', 'email']).where('id', 'in', logIds.slice(i, i + 1_000)).execute();
    for (const row of rows) out.set(Number(row.id), { deliveryId: Number(row.delivery_id), email: row.email });
  }
  return out;
}

export interface BounceFailure {
  code: number | null;
  enhancedStatus: string | null;
  text: string;
  type: string;
  reason: string;
  category: string;
  at: number;
}

/**
 * A hard bounce after the remote MTA said 250 (or while a retry is pending) makes the log failed;
 * a log being sent right now ('sending') or already final is left to its own outcome.
 */
export async function failLogFromBounce(store: Store, logId: number, failure: BounceFailure): Promise<boolean> {
  const result = await store.db
    .updateTable('delivery_logs')
    .set({
      status: 'failed',
      last_reply_code: failure.code,
      last_enhanced_status: failure.enhancedStatus,
      last_reply_text: failure.text.slice(0, 1_000),
      failure_type: failure.type as 'hard',
      failure_reason: failure.reason,
      failure_category: failure.category,
      updated_at: failure.at,
    })
    .where('id', '=', logId)
    .where('status', 'in', ['sent', 'pending'])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
