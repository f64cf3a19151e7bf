import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type { DeliveryState, MidOutboundDeliveryTable, MidOutboundPartTable } from '../store/tables.ts';
import type { LogChange } from './wire.ts';

// Marketing side storage (tables of migration 0008): the delivery handed to a peer, its parts with
// their push state (so a restarted push resumes where it stopped), the log cursor and counters.

export type OutboundRow = MidOutboundDeliveryTable;
export type OutboundPartRow = MidOutboundPartTable;

/**
 * Moves the delivery to in_progress with execution_peer set, if it is in one of `from`, in one
 * conditional update: the local MTA skips deliveries with an execution peer, so there is no instant
 * at which it could claim them. valid_until stays null (the execution side enforces validity).
 * False when the delivery was in none of those states.
 */
export async function markDeliveryPushed(
  store: Store,
  deliveryId: number,
  change: { peer: string; from: readonly DeliveryState[]; now: number },
): Promise<boolean> {
  const { peer, now } = change;
  const moved = await store.db
    .updateTable('deliveries')
    .set({ state: 'in_progress', execution_peer: peer, started_at: now, valid_until: null, updated_at: now })
    .where('id', '=', deliveryId)
    .where('state', 'in', change.from)
    .executeTakeFirst();
  return Number(moved.numUpdatedRows) > 0;
}

/** The outbound row of a push to `peer` (kept when it exists: a resumed push). */
export async function insertOutbound(store: Store, deliveryId: number, peer: string, now: number): Promise<void> {
  await store.db
    .insertInto('mid_outbound_deliveries')
    .values({
      delivery_id: deliveryId,
      peer,
      remote_id: null,
      state: 'pushing',
      parts_total: 0,
      recipients: 0,
      log_cursor: 0,
      logs_complete: 0,
      logs_synced_at: null,
      logs_applied: 0,
      remote_state: null,
      counters: null,
      counters_at: null,
      last_error: null,
      last_error_at: null,
      push_started_at: now,
      finalized_at: null,
      created_at: now,
      updated_at: now,
      state_version: 0,
      state_target: null,
      state_changed_at: null,
      state_acked_version: 0,
      state_acked_at: null,
      state_outcome: null,
      state_remote: null,
      state_attempts: 0,
      state_error: null,
    })
    .onConflict((oc) => oc.column('delivery_id').doNothing())
    .execute();
}

export async function getOutbound(store: Store, deliveryId: number): Promise<OutboundRow | undefined> {
  return store.db
    .selectFrom('mid_outbound_deliveries')
    .selectAll()
    .where('delivery_id', '=', deliveryId)
    .executeTakeFirst();
}

export async function listOutbound(store: Store, deliveryId?: number): Promise<OutboundRow[]> {
  let query = store.db.selectFrom('mid_outbound_deliveries').selectAll().orderBy('delivery_id', 'desc');
  if (deliveryId !== undefined) query = query.where('delivery_id', '=', deliveryId);
  return query.limit(100).execute();
}

export async function updateOutbound(
  store: Store,
  deliveryId: number,
  changes: Partial<OutboundRow>,
  now: number,
): Promise<void> {
  await store.db
    .updateTable('mid_outbound_deliveries')
    .set({ ...changes, updated_at: now })
    .where('delivery_id', '=', deliveryId)
    .execute();
}

/** Splits the delivery's logs into parts by id range, once (the plan is kept, so a resumed push sends the same parts). */
export async function planParts(
  store: Store,
  deliveryId: number,
  partSize: number,
  now: number,
): Promise<OutboundPartRow[]> {
  const existing = await listParts(store, deliveryId);
  if (existing.length > 0) return existing;
  const parts: OutboundPartRow[] = [];
  let afterId = 0;
  for (let part = 1; ; part++) {
    // The id of the part's last log: one primary-key range walk per part, no ids held in memory.
    const found = await sql<{ id: number }>`
      select id from delivery_logs where ${ownDelivery(store)} = ${deliveryId} and id > ${afterId}
      order by id limit 1 offset ${partSize - 1}`.execute(store.db);
    const boundary = found.rows[0];
    if (boundary) {
      parts.push(partRow(deliveryId, part, afterId + 1, Number(boundary.id), partSize, now));
      afterId = Number(boundary.id);
      continue;
    }
    const rest = await store.db
      .selectFrom('delivery_logs')
      .select([sql<number>`count(*)`.as('n'), sql<number | null>`max(id)`.as('last')])
      .where('delivery_id', '=', deliveryId)
      .where('id', '>', afterId)
      .executeTakeFirstOrThrow();
    if (Number(rest.n) > 0) parts.push(partRow(deliveryId, part, afterId + 1, Number(rest.last), Number(rest.n), now));
    break;
  }
  await store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < parts.length; i += 500)
      await trx
        .insertInto('mid_outbound_parts')
        .values(parts.slice(i, i + 500))
        .execute();
  });
  return parts;
}

function partRow(
  deliveryId: number,
  part: number,
  first: number,
  last: number,
  recipients: number,
  now: number,
): OutboundPartRow {
  return {
    delivery_id: deliveryId,
    part_number: part,
    first_log_id: first,
    last_log_id: last,
    recipients,
    state: 'pending',
    part_key: null,
    bytes: null,
    attempts: 0,
    timeouts: 0,
    build_ms: null,
    latency_ms: null,
    last_error: null,
    acked_at: null,
    updated_at: now,
  };
}

export async function listParts(store: Store, deliveryId: number): Promise<OutboundPartRow[]> {
  return store.db
    .selectFrom('mid_outbound_parts')
    .selectAll()
    .where('delivery_id', '=', deliveryId)
    .orderBy('part_number')
    .execute();
}

export async function updatePart(
  store: Store,
  deliveryId: number,
  part: number,
  changes: Partial<OutboundPartRow>,
): Promise<void> {
  await store.db
    .updateTable('mid_outbound_parts')
    .set(changes)
    .where('delivery_id', '=', deliveryId)
    .where('part_number', '=', part)
    .execute();
}

/**
 * SQLite's planner, without statistics, prefers an index on delivery_id (then scans every log of the
 * delivery and sorts) over the primary-key range: quadratic over a push. Unary + disables that index.
 */
function ownDelivery(store: Store) {
  return store.dialect === 'postgres' ? sql`delivery_id` : sql`+delivery_id`;
}

export async function hasDeliveryLogs(store: Store, deliveryId: number): Promise<boolean> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select('id')
    .where('delivery_id', '=', deliveryId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function readPartLogs(store: Store, deliveryId: number, first: number, last: number) {
  const result = await sql<{ id: number; email: string; domain: string; data: string }>`
    select id, email, domain, data from delivery_logs
    where ${ownDelivery(store)} = ${deliveryId} and id >= ${first} and id <= ${last} order by id`.execute(store.db);
  return result.rows;
}

/** Applies a page of execution-side changes and moves the cursor, in one transaction (a crash re-pulls the page). */
export async function applyLogChanges(
  store: Store,
  deliveryId: number,
  changes: readonly LogChange[],
  nextCursor: number,
  now: number,
): Promise<void> {
  const postgres = store.dialect === 'postgres';
  const json = JSON.stringify(
    changes.map((c) => ({
      id: c.id,
      st: c.status,
      at: c.attempts,
      code: c.replyCode,
      enh: c.enhancedStatus,
      txt: c.replyText,
      ft: c.failureType,
      fr: c.failureReason,
      fc: c.failureCategory,
      mx: c.mxHost,
      sa: c.sentAt,
      upd: c.updatedAt,
    })),
  );
  const source = postgres
    ? sql`select * from jsonb_to_recordset(cast(${json} as jsonb)) as r(id bigint, st text, at int, code int, enh text, txt text, ft text, fr text, fc text, mx text, sa bigint, upd bigint)`
    : sql`select value->>'id' as id, value->>'st' as st, value->>'at' as at, value->>'code' as code, value->>'enh' as enh, value->>'txt' as txt,
            value->>'ft' as ft, value->>'fr' as fr, value->>'fc' as fc, value->>'mx' as mx, value->>'sa' as sa, value->>'upd' as upd
          from json_each(${json})`;
  const ownDelivery = postgres ? sql`delivery_logs.delivery_id` : sql`+delivery_logs.delivery_id`;
  await store.db.transaction().execute(async (trx) => {
    if (changes.length > 0) {
      await sql`
          with v as (${source})
          update delivery_logs set status = v.st, attempts = v.at, last_reply_code = v.code, last_enhanced_status = v.enh, last_reply_text = v.txt,
            failure_type = v.ft, failure_reason = v.fr, failure_category = v.fc, mx_host = v.mx, sent_at = v.sa, updated_at = v.upd,
            claimed_by = null, claimed_until = null
          from v where delivery_logs.id = v.id and ${ownDelivery} = ${deliveryId}`.execute(trx);
    }
    await trx
      .updateTable('mid_outbound_deliveries')
      .set({
        log_cursor: nextCursor,
        logs_synced_at: now,
        updated_at: now,
        logs_applied: sql`logs_applied + ${changes.length}`,
      })
      .where('delivery_id', '=', deliveryId)
      .execute();
  });
}

export async function countPendingLogs(store: Store, deliveryId: number): Promise<number> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select(sql<number>`count(*)`.as('n'))
    .where('delivery_id', '=', deliveryId)
    .where('status', 'in', ['pending', 'sending'])
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Outbound deliveries whose logs are not all pulled back yet. */
export async function deliveriesToSync(store: Store): Promise<OutboundRow[]> {
  return store.db
    .selectFrom('mid_outbound_deliveries')
    .selectAll()
    .where('state', '=', 'finalized')
    .where('remote_id', 'is not', null)
    .where('logs_complete', '=', 0)
    .orderBy('delivery_id')
    .execute();
}

/** Pushes not finalized and untouched since `before` (their pusher died or gave up), of deliveries not stopped since. */
export async function stalledPushes(store: Store, before: number): Promise<OutboundRow[]> {
  return store.db
    .selectFrom('mid_outbound_deliveries as o')
    .innerJoin('deliveries as d', 'd.id', 'o.delivery_id')
    .selectAll('o')
    .where('o.state', '=', 'pushing')
    .where('o.updated_at', '<', before)
    .where('d.state', 'in', ['in_progress', 'paused'])
    .orderBy('o.delivery_id')
    .execute();
}

// --- forwarded state changes (migration 0011) --------------------------------------------------

/**
 * Makes the local delivery's state the latest target to forward when it differs from the last one
 * recorded (none recorded = in_progress, the state a finalized push starts in). One statement reads
 * the state and bumps the version, so two callers cannot record an older state over a newer one.
 */
export async function noteLocalState(store: Store, deliveryId: number, now: number): Promise<OutboundRow | undefined> {
  await sql`
    update mid_outbound_deliveries set state_version = state_version + 1,
      state_target = (select d.state from deliveries d where d.id = mid_outbound_deliveries.delivery_id),
      state_changed_at = ${now}, state_attempts = 0, state_error = null, updated_at = ${now}
    where delivery_id = ${deliveryId} and exists (
      select 1 from deliveries d where d.id = mid_outbound_deliveries.delivery_id
        and d.state in ('paused', 'in_progress', 'stopped') and d.state <> coalesce(mid_outbound_deliveries.state_target, 'in_progress'))`.execute(
    store.db,
  );
  return getOutbound(store, deliveryId);
}

export async function recordStateAttempt(
  store: Store,
  deliveryId: number,
  version: number,
  error: string | null,
  now: number,
): Promise<void> {
  await store.db
    .updateTable('mid_outbound_deliveries')
    .set({
      state_attempts: sql`state_attempts + 1`,
      ...(error === null ? {} : { state_error: error.slice(0, 1_000) }),
      updated_at: now,
    })
    .where('delivery_id', '=', deliveryId)
    .where('state_version', '=', version)
    .execute();
}

export async function recordStateAck(
  store: Store,
  deliveryId: number,
  version: number,
  ack: { outcome: string; remoteState: string },
  now: number,
): Promise<void> {
  await store.db
    .updateTable('mid_outbound_deliveries')
    .set({
      state_acked_version: version,
      state_acked_at: now,
      state_outcome: ack.outcome,
      state_remote: ack.remoteState,
      remote_state: ack.remoteState,
      state_error: null,
      updated_at: now,
    })
    .where('delivery_id', '=', deliveryId)
    .where('state_acked_version', '<', version)
    .execute();
}

/** Pushed deliveries whose local state was not acknowledged by their execution instance yet. */
export async function unforwardedStates(store: Store): Promise<OutboundRow[]> {
  const rows = await sql<{ delivery_id: number }>`
    select o.delivery_id from mid_outbound_deliveries o join deliveries d on d.id = o.delivery_id
    where o.logs_complete = 0 and (o.state_acked_version < o.state_version
      or (d.state in ('paused', 'in_progress', 'stopped') and d.state <> coalesce(o.state_target, 'in_progress')))
    order by o.delivery_id`.execute(store.db);
  const outbound: OutboundRow[] = [];
  for (const row of rows.rows) {
    const found = await getOutbound(store, Number(row.delivery_id));
    if (found) outbound.push(found);
  }
  return outbound;
}

export async function localDeliveryStates(store: Store, deliveryIds: readonly number[]): Promise<Map<number, string>> {
  if (deliveryIds.length === 0) return new Map();
  const rows = await store.db
    .selectFrom('deliveries')
    .select(['id', 'state'])
    .where('id', 'in', [...deliveryIds])
    .execute();
  return new Map(rows.map((row) => [Number(row.id), row.state]));
}
