import { sql } from 'kysely';
import { AppError } from '../common/errors.ts';
import type { LogChange, SubmitRequest } from './wire.ts';
import type { Store } from '../store/database.ts';
import type { MidInboundStateChangeTable } from '../store/tables.ts';

// Execution side of mid-sourcing (migration 0008): deliveries received from marketing peers, their
// parts, and the change log the marketing side pulls with a server-side cursor. The marketing side's
// queries are in src/midsourcing/outbound-store.ts.

// --- execution side ---------------------------------------------------------------------------

export interface InboundDelivery {
  deliveryId: number;
  peer: string;
  sourceDeliveryId: number;
  partsExpected: number;
  recipientsExpected: number;
  finalizedAt: number | null;
  state: string;
  validUntil: number | null;
  stateVersion: number;
  stateTarget: string | null;
  readCursor: number;
}

export async function findInboundBySource(
  store: Store,
  peer: string,
  sourceDeliveryId: number,
): Promise<InboundDelivery | undefined> {
  return inboundWhere(store, (q) => q.where('m.peer', '=', peer).where('m.source_delivery_id', '=', sourceDeliveryId));
}

/** A delivery received from `peer` (another peer's delivery is reported as not found). */
export async function findInbound(
  store: Store,
  peer: string,
  deliveryId: number,
): Promise<InboundDelivery | undefined> {
  return inboundWhere(store, (q) => q.where('m.peer', '=', peer).where('m.delivery_id', '=', deliveryId));
}

async function inboundWhere(
  store: Store,
  filter: (q: ReturnType<typeof inboundQuery>) => ReturnType<typeof inboundQuery>,
): Promise<InboundDelivery | undefined> {
  const row = await filter(inboundQuery(store)).executeTakeFirst();
  if (!row) return undefined;
  return {
    deliveryId: Number(row.delivery_id),
    peer: row.peer,
    sourceDeliveryId: Number(row.source_delivery_id),
    partsExpected: Number(row.parts_expected),
    recipientsExpected: Number(row.recipients_expected),
    finalizedAt: row.finalized_at === null ? null : Number(row.finalized_at),
    state: row.state,
    validUntil: row.valid_until === null ? null : Number(row.valid_until),
    stateVersion: Number(row.state_version),
    stateTarget: row.state_target,
    readCursor: Number(row.read_cursor),
  };
}

function inboundQuery(store: Store) {
  return store.db
    .selectFrom('mid_inbound_deliveries as m')
    .innerJoin('deliveries as d', 'd.id', 'm.delivery_id')
    .select([
      'm.delivery_id',
      'm.peer',
      'm.source_delivery_id',
      'm.parts_expected',
      'm.recipients_expected',
      'm.finalized_at',
      'm.state_version',
      'm.state_target',
      'm.read_cursor',
      'd.state',
      'd.valid_until',
    ]);
}

/** Creates the execution delivery in `preparing` (it fills part by part; `herald delivery prepare` cannot touch it). */
export async function createInbound(
  store: Store,
  peer: string,
  request: SubmitRequest,
  now: number,
): Promise<InboundDelivery> {
  try {
    await store.db.transaction().execute(async (trx) => {
      const delivery = await trx
        .insertInto('deliveries')
        .values({
          name: request.name,
          state: 'preparing',
          from_address: request.fromAddress,
          from_name: request.fromName,
          reply_to: request.replyTo,
          subject_template: request.subject,
          html_template: request.html,
          text_template: request.text,
          list_id: null,
          affinity: request.affinity,
          validity_seconds: request.validitySeconds,
          target_count: request.recipients,
          created_at: now,
          updated_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('mid_inbound_deliveries')
        .values({
          delivery_id: Number(delivery.id),
          peer,
          source_delivery_id: request.marketingDeliveryId,
          parts_expected: request.parts,
          recipients_expected: request.recipients,
          finalized_at: null,
          created_at: now,
          state_version: 0,
          state_target: null,
          read_cursor: 0,
          read_at: null,
        })
        .execute();
    });
  } catch (error) {
    // Two submits of one delivery raced: the unique (peer, source) index kept one; use it.
    const existing = await findInboundBySource(store, peer, request.marketingDeliveryId);
    if (existing) return existing;
    throw error;
  }
  const created = await findInboundBySource(store, peer, request.marketingDeliveryId);
  if (!created) throw new AppError('INTERNAL', 'received delivery vanished after creation');
  return created;
}

export async function countInboundParts(
  store: Store,
  deliveryId: number,
): Promise<{ parts: number; recipients: number }> {
  const row = await store.db
    .selectFrom('mid_inbound_parts')
    .select([sql<number>`count(*)`.as('parts'), sql<number>`coalesce(sum(recipients), 0)`.as('recipients')])
    .where('delivery_id', '=', deliveryId)
    .executeTakeFirstOrThrow();
  return { parts: Number(row.parts), recipients: Number(row.recipients) };
}

export interface InboundLog {
  sourceLogId: number;
  email: string;
  domain: string;
  data: string;
}

export type AppendResult =
  | { kind: 'inserted'; inserted: number }
  | { kind: 'duplicate' }
  | { kind: 'conflict'; existingKey: string };

/**
 * Inserts a part atomically: the part row and its logs commit together. The part row is written
 * first, so a concurrent copy of the same part waits on its primary key and then sees it as a
 * duplicate; the unique (delivery_id, address_key) index (the email as received) makes a recipient present in two parts count once.
 */
export async function appendInboundPart(
  store: Store,
  deliveryId: number,
  part: number,
  key: string,
  logs: InboundLog[],
  now: number,
): Promise<AppendResult> {
  const postgres = store.dialect === 'postgres';
  const appended = await store.db.transaction().execute(async (trx) => {
    const claimed = await trx
      .insertInto('mid_inbound_parts')
      .values({
        delivery_id: deliveryId,
        part_number: part,
        part_key: key,
        recipients: logs.length,
        inserted: 0,
        received_at: now,
      })
      .onConflict((oc) => oc.columns(['delivery_id', 'part_number']).doNothing())
      .executeTakeFirst();
    if (Number(claimed.numInsertedOrUpdatedRows ?? 0) === 0) {
      const existing = await trx
        .selectFrom('mid_inbound_parts')
        .select('part_key')
        .where('delivery_id', '=', deliveryId)
        .where('part_number', '=', part)
        .executeTakeFirstOrThrow();
      return existing.part_key === key
        ? { kind: 'duplicate' as const }
        : { kind: 'conflict' as const, existingKey: existing.part_key };
    }
    if (logs.length === 0) return { kind: 'inserted' as const, inserted: 0 };
    // One statement per part: the rows travel as one JSON parameter (no bound-parameter limit).
    const json = JSON.stringify(logs.map((log) => [log.sourceLogId, log.email, log.domain, log.data]));
    const source = postgres
      ? sql`select (r->>0)::bigint as sid, r->>1 as email, r->>2 as domain, r->>3 as data from jsonb_array_elements(cast(${json} as jsonb)) as r`
      : sql`select value->>0 as sid, value->>1 as email, value->>2 as domain, value->>3 as data from json_each(${json})`;
    const result = await sql`
        insert into delivery_logs (delivery_id, source_log_id, email, domain, data, status, attempts, next_attempt_at, updated_at, address_key)
        select ${deliveryId}, v.sid, v.email, v.domain, v.data, 'pending', 0, 0, ${now}, v.email from (${source}) as v where true
        on conflict (delivery_id, address_key) do nothing`.execute(trx);
    const inserted = Number(result.numAffectedRows ?? 0);
    await trx
      .updateTable('mid_inbound_parts')
      .set({ inserted })
      .where('delivery_id', '=', deliveryId)
      .where('part_number', '=', part)
      .execute();
    return { kind: 'inserted' as const, inserted };
  });
  // The push is alive: the delivery-manager waits a week from the last part before it takes a received
  // delivery for abandoned (stalePreparations). After the commit, so parts appended at once do not
  // queue on the delivery's row.
  if (appended.kind === 'inserted')
    await store.db
      .updateTable('deliveries')
      .set({ updated_at: now })
      .where('id', '=', deliveryId)
      .where('state', '=', 'preparing')
      .execute();
  return appended;
}

/** The peer a received delivery came from. */
export async function inboundPeer(store: Store, deliveryId: number): Promise<string> {
  const inbound = await store.db
    .selectFrom('mid_inbound_deliveries')
    .select('peer')
    .where('delivery_id', '=', deliveryId)
    .executeTakeFirstOrThrow();
  return inbound.peer;
}

/** Dates the first finalize of a received delivery (a later one changes nothing). */
export async function markInboundFinalized(store: Store, deliveryId: number, now: number): Promise<void> {
  await store.db
    .updateTable('mid_inbound_deliveries')
    .set({ finalized_at: now })
    .where('delivery_id', '=', deliveryId)
    .where('finalized_at', 'is', null)
    .execute();
}

const publishBatch = 50_000;
// Any constant: serializes publishers across the processes sharing one PostgreSQL database.
const publishLockKey = 0x6d6964;

/**
 * Gives committed change rows their cursor position (seq). A reader only ever sees published rows,
 * and every publication commits atomically with seqs above all earlier ones, so a reader can never
 * advance its cursor past a row that is committed later:
 * - SQLite has one writer at a time, so row ids are already in commit order: seq = id.
 * - PostgreSQL ids are taken before commit and may commit out of order; publishers run one at a time
 *   (transaction-scoped advisory lock) and number only rows committed before they started.
 * `published_at` dates the change for the purge (a change's age counts from when it became readable).
 */
export async function publishLogChanges(store: Store, now: number): Promise<number> {
  if (store.dialect === 'sqlite') {
    const result = await sql`
      update mid_log_changes set seq = id, published_at = ${now}
      where id in (select id from mid_log_changes where seq is null order by id limit ${publishBatch})`.execute(
      store.db,
    );
    return Number(result.numAffectedRows ?? 0);
  }
  return store.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${publishLockKey})`.execute(trx);
    const result = await sql`
      update mid_log_changes set seq = nextval('mid_log_change_seq'), published_at = ${now}
      where id in (select id from mid_log_changes where seq is null order by id limit ${publishBatch})`.execute(trx);
    return Number(result.numAffectedRows ?? 0);
  });
}

export async function hasUnpublishedChanges(store: Store, deliveryId: number): Promise<boolean> {
  const row = await store.db
    .selectFrom('mid_log_changes')
    .select('id')
    .where('seq', 'is', null)
    .where('delivery_id', '=', deliveryId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** Published changes after `cursor`, each with the log's current state (a log changed twice appears once, at its last seq). */
export async function readLogChanges(
  store: Store,
  deliveryId: number,
  cursor: number,
  limit: number,
): Promise<{ changes: LogChange[]; nextCursor: number }> {
  const rows = await sql<{
    seq: number;
    id: number;
    status: string;
    attempts: number;
    code: number | null;
    enh: string | null;
    txt: string | null;
    ft: string | null;
    fr: string | null;
    fc: string | null;
    mx: string | null;
    sa: number | null;
    upd: number;
  }>`
    select c.seq, l.source_log_id as id, l.status, l.attempts, l.last_reply_code as code, l.last_enhanced_status as enh,
           l.last_reply_text as txt, l.failure_type as ft, l.failure_reason as fr, l.failure_category as fc,
           l.mx_host as mx, l.sent_at as sa, l.updated_at as upd
    from mid_log_changes c join delivery_logs l on l.id = c.log_id
    where c.delivery_id = ${deliveryId} and c.seq > ${cursor}
    order by c.seq limit ${limit}`.execute(store.db);
  // The page's last seq is the cursor even if its log was deleted meanwhile (join dropped it).
  const last = await sql<{ seq: number }>`
    select max(seq) as seq from (select seq from mid_log_changes where delivery_id = ${deliveryId} and seq > ${cursor} order by seq limit ${limit}) as page`.execute(
    store.db,
  );
  const byLog = new Map<number, LogChange>();
  for (const row of rows.rows) {
    if (row.id === null) continue;
    byLog.delete(Number(row.id));
    byLog.set(Number(row.id), {
      seq: Number(row.seq),
      id: Number(row.id),
      // A log claimed again for a retry is still pending from the marketing side's point of view.
      status: (row.status === 'sending' ? 'pending' : row.status) as LogChange['status'],
      attempts: Number(row.attempts),
      replyCode: row.code === null ? null : Number(row.code),
      enhancedStatus: row.enh,
      replyText: row.txt,
      failureType: row.ft as LogChange['failureType'],
      failureReason: row.fr,
      failureCategory: row.fc,
      mxHost: row.mx,
      sentAt: row.sa === null ? null : Number(row.sa),
      updatedAt: Number(row.upd),
    });
  }
  const lastSeq = last.rows[0]?.seq;
  return {
    changes: [...byLog.values()],
    nextCursor: lastSeq === null || lastSeq === undefined ? cursor : Number(lastSeq),
  };
}

export async function hasChangesAfter(store: Store, deliveryId: number, cursor: number): Promise<boolean> {
  const row = await store.db
    .selectFrom('mid_log_changes')
    .select('id')
    .where('delivery_id', '=', deliveryId)
    .where('seq', '>', cursor)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function findInboundPartKey(store: Store, deliveryId: number, part: number): Promise<string | undefined> {
  const row = await store.db
    .selectFrom('mid_inbound_parts')
    .select('part_key')
    .where('delivery_id', '=', deliveryId)
    .where('part_number', '=', part)
    .executeTakeFirst();
  return row?.part_key;
}

// --- execution side: forwarded state changes (migration 0011) ---------------------------------

/** Records `version` as the highest one seen, if it is; false when this or a newer version was already recorded. */
export async function recordInboundStateVersion(
  store: Store,
  deliveryId: number,
  version: number,
  target: string,
): Promise<boolean> {
  const result = await store.db
    .updateTable('mid_inbound_deliveries')
    .set({ state_version: version, state_target: target })
    .where('delivery_id', '=', deliveryId)
    .where('state_version', '<', version)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function insertInboundStateChange(store: Store, row: MidInboundStateChangeTable): Promise<void> {
  await store.db.insertInto('mid_inbound_state_changes').values(row).execute();
}

/** At finalize: the held change of `version` gets its outcome; older held ones were superseded by it. */
export async function settleHeldStateChanges(
  store: Store,
  deliveryId: number,
  version: number,
  outcome: MidInboundStateChangeTable['outcome'],
  now: number,
): Promise<void> {
  await store.db
    .updateTable('mid_inbound_state_changes')
    .set({ outcome, applied_at: outcome === 'applied' ? now : null })
    .where('delivery_id', '=', deliveryId)
    .where('version', '=', version)
    .where('outcome', '=', 'held')
    .execute();
  await store.db
    .updateTable('mid_inbound_state_changes')
    .set({ outcome: 'superseded' })
    .where('delivery_id', '=', deliveryId)
    .where('version', '<', version)
    .where('outcome', '=', 'held')
    .execute();
}

export async function listInboundStateChanges(store: Store, deliveryId: number): Promise<MidInboundStateChangeTable[]> {
  return store.db
    .selectFrom('mid_inbound_state_changes')
    .selectAll()
    .where('delivery_id', '=', deliveryId)
    .orderBy('version')
    .execute();
}

// --- execution side: change log retention ------------------------------------------------------

/**
 * A logs request for `cursor` says the peer has applied every change at or below it (it moves its
 * stored cursor in the transaction that applies a page): those rows may go once old enough.
 */
export async function recordReadCursor(store: Store, deliveryId: number, cursor: number, now: number): Promise<void> {
  if (cursor <= 0) return;
  await store.db
    .updateTable('mid_inbound_deliveries')
    .set({ read_cursor: cursor, read_at: now })
    .where('delivery_id', '=', deliveryId)
    .where('read_cursor', '<', cursor)
    .execute();
}

/**
 * Received deliveries whose oldest change already read by their peer was published before `before`:
 * one probe of the (delivery_id, seq) index per delivery, no scan of the change log.
 */
export async function logChangePurgeCandidates(
  store: Store,
  before: number,
): Promise<Array<{ deliveryId: number; readCursor: number }>> {
  const rows = await sql<{ delivery_id: number; read_cursor: number }>`
    select m.delivery_id, m.read_cursor from mid_inbound_deliveries m
    where m.read_cursor > 0 and (
      select c.published_at from mid_log_changes c
      where c.delivery_id = m.delivery_id and c.seq <= m.read_cursor order by c.seq limit 1
    ) < ${before}
    order by m.delivery_id`.execute(store.db);
  return rows.rows.map((row) => ({ deliveryId: Number(row.delivery_id), readCursor: Number(row.read_cursor) }));
}

/** Deletes at most `limit` changes of one delivery read past (seq ≤ readCursor) and published before `before`. */
export async function purgeReadLogChangesBatch(
  store: Store,
  deliveryId: number,
  readCursor: number,
  before: number,
  limit: number,
): Promise<number> {
  const result = await sql`
    delete from mid_log_changes where id in (
      select id from mid_log_changes
      where delivery_id = ${deliveryId} and seq <= ${readCursor} and published_at < ${before}
      order by seq limit ${limit})`.execute(store.db);
  return Number(result.numAffectedRows ?? 0);
}

/** Deliveries with change rows but no received delivery any more (purged): nobody can read those rows. */
export async function orphanLogChangeDeliveries(store: Store): Promise<number[]> {
  const rows = await sql<{ delivery_id: number }>`
    select distinct c.delivery_id from mid_log_changes c
    where not exists (select 1 from mid_inbound_deliveries m where m.delivery_id = c.delivery_id)
    order by c.delivery_id`.execute(store.db);
  return rows.rows.map((row) => Number(row.delivery_id));
}

export async function purgeOrphanLogChangesBatch(store: Store, deliveryId: number, limit: number): Promise<number> {
  const result = await sql`
    delete from mid_log_changes where id in (
      select c.id from mid_log_changes c
      where c.delivery_id = ${deliveryId} and not exists (select 1 from mid_inbound_deliveries m where m.delivery_id = c.delivery_id)
      limit ${limit})`.execute(store.db);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * Serializes the writers of one received delivery's state (state changes and finalize) on its
 * mid_inbound_deliveries row. SQLite runs one write transaction at a time already.
 */
export async function lockInbound(store: Store, deliveryId: number): Promise<void> {
  if (store.dialect === 'postgres')
    await sql`select delivery_id from mid_inbound_deliveries where delivery_id = ${deliveryId} for update`.execute(
      store.db,
    );
}
