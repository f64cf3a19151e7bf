import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type { InboundSampleRow, QualificationEntryRow, QualificationStatus } from '../store/tables.ts';

// Bounce qualification storage: the table of reply shapes no rule matched (counted, with a first
// example), the inbound role's samples and counters, and the updates a bounce mail makes to the
// delivery log it is about.

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
export async function recordUnmatchedReplies(
  store: Store,
  replies: readonly UnmatchedReply[],
  now: number,
): Promise<void> {
  if (replies.length === 0) return;
  const db = store.db;
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

export async function listQualificationEntries(
  store: Store,
  options: { status?: QualificationStatus | 'all'; limit?: number } = {},
): Promise<QualificationEntryRow[]> {
  let query = store.db.selectFrom('qualification_entries').selectAll();
  const status = options.status ?? 'to_qualify';
  if (status !== 'all') query = query.where('status', '=', status);
  const rows = await query
    .orderBy('count', 'desc')
    .orderBy('id')
    .limit(options.limit ?? 100)
    .execute();
  return rows.map(normalizeEntry);
}

export async function getQualificationEntry(store: Store, id: number): Promise<QualificationEntryRow | undefined> {
  const row = await store.db.selectFrom('qualification_entries').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? normalizeEntry(row) : undefined;
}

export async function markQualificationEntry(
  store: Store,
  id: number,
  update: { status: QualificationStatus; ruleId?: string | null; category?: string | null },
  now: number,
): Promise<void> {
  await store.db
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
  await store.db
    .insertInto('inbound_counters')
    .values([...counts].map(([name, count]) => ({ name, count, last_at: now })))
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet({ count: sql`inbound_counters.count + excluded.count`, last_at: sql`excluded.last_at` }),
    )
    .execute();
}

export async function inboundCounters(store: Store): Promise<Record<string, number>> {
  const rows = await store.db.selectFrom('inbound_counters').selectAll().orderBy('name').execute();
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

/** The problem of samples of mail sent only to postmaster@ / abuse@ (inbound-processor.ts). */
export const REVIEW_SAMPLE = 'for_review';

/**
 * Stores a sample and keeps only the newest `keep` of its pool (the table is bounded whatever
 * arrives). Mail to postmaster@ / abuse@ (anyone can send it, and spam does) is one pool, every
 * other sample another: a flood of mail to postmaster@ cannot push out the samples of real
 * bounces the operator needs.
 */
export async function storeInboundSample(store: Store, sample: NewInboundSample, keep: number): Promise<void> {
  const db = store.db;
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
  const review = sample.problem === REVIEW_SAMPLE;
  const cutoff = await db
    .selectFrom('inbound_samples')
    .select('id')
    .where('problem', review ? '=' : '<>', REVIEW_SAMPLE)
    .orderBy('id', 'desc')
    .offset(keep)
    .limit(1)
    .executeTakeFirst();
  if (cutoff)
    await db
      .deleteFrom('inbound_samples')
      .where('id', '<=', cutoff.id)
      .where('problem', review ? '=' : '<>', REVIEW_SAMPLE)
      .execute();
}

export async function listInboundSamples(store: Store, limit = 50): Promise<InboundSampleRow[]> {
  const rows = await store.db.selectFrom('inbound_samples').selectAll().orderBy('id', 'desc').limit(limit).execute();
  return rows.map((row) => ({
    ...row,
    id: Number(row.id),
    received_at: Number(row.received_at),
    size: Number(row.size),
  }));
}

// ---- delivery logs touched by bounce mails ---------------------------------------------------

export interface BouncedLog {
  id: number;
  deliveryId: number;
  email: string;
  status: string;
}

export async function findLogForBounce(store: Store, logId: number): Promise<BouncedLog | undefined> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select(['id', 'delivery_id', 'email', 'status'])
    .where('id', '=', logId)
    .executeTakeFirst();
  return row
    ? { id: Number(row.id), deliveryId: Number(row.delivery_id), email: row.email, status: row.status }
    : undefined;
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

// ---- received messages applied once (migration 0022) -----------------------------------------

/**
 * Records that the message `identity` is being applied, in the caller's transaction; false when it
 * already was (a retry). On PostgreSQL a concurrent transaction inserting the same identity waits
 * for this one and then sees the row.
 */
export async function claimInboundMessage(trx: Store, identity: string, receivedAt: number): Promise<boolean> {
  const inserted = await trx.db
    .insertInto('inbound_messages')
    .values({ identity, received_at: receivedAt })
    .onConflict((oc) => oc.column('identity').doNothing())
    .returning('identity')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** Deletes at most `limit` message identities received before `before`, oldest first (by the received_at index). */
export async function purgeInboundMessagesBatch(store: Store, before: number, limit: number): Promise<number> {
  const result = await sql`
    delete from inbound_messages where received_at < ${before} and identity in (
      select identity from inbound_messages where received_at < ${before} order by received_at limit ${limit})`.execute(
    store.db,
  );
  return Number(result.numAffectedRows ?? 0);
}
