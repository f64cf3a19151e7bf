import { sql, type Kysely } from 'kysely';
import type { ClaimedLog, DeliveryContent, MtaStore } from './mta-store.ts';
import { claimQuotas, type Share } from './fair-share.ts';
import type { Outcome } from './outcome.ts';
import { foldDeliveryLogCounts } from '../delivery/log-counts-store.ts';
import { inTransaction, type Store } from '../store/database.ts';
import type { Database } from '../store/tables.ts';

// The MTA's storage, for both dialects. Statements are short on purpose: better-sqlite3 runs them
// synchronously on the event loop that also drives the SMTP sockets.

interface OutcomeRow {
  id: number;
  st: 'sent' | 'pending' | 'failed';
  /** 1 when the attempt counts (an SMTP conversation or a final decision), 0 otherwise. */
  inc: 0 | 1;
  /** 1 keeps the previous reply and category (expired before any new attempt: the last real reply explains why). */
  kr: 0 | 1;
  na: number | null;
  code: number | null;
  enh: string | null;
  txt: string | null;
  ft: string | null;
  fr: string | null;
  fc: string | null;
  mx: string | null;
  sa: number | null;
  upd: number;
}

/** The row update each outcome makes (released outcomes are not rows: see releaseRows). */
function outcomeRows(outcomes: readonly Outcome[]): OutcomeRow[] {
  const rows: OutcomeRow[] = [];
  for (const outcome of outcomes) {
    if (outcome.kind === 'released') continue;
    const reply = outcome.reply;
    const verdict = outcome.kind === 'sent' ? null : outcome.verdict;
    rows.push({
      id: outcome.logId,
      st: outcome.kind === 'sent' ? 'sent' : outcome.kind === 'deferred' ? 'pending' : 'failed',
      // A message expired before any attempt (local 'expired') did not use an attempt.
      inc: reply.local === 'expired' ? 0 : 1,
      kr: reply.local === 'expired' ? 1 : 0,
      na: outcome.kind === 'deferred' ? outcome.retryAt : null,
      code: reply.code,
      enh: reply.enhanced,
      txt: reply.text,
      ft: verdict?.type ?? null,
      fr: outcome.kind === 'failed' && outcome.expired ? 'expired' : (verdict?.reason ?? null),
      fc: verdict?.category ?? null,
      mx: outcome.mxHost,
      sa: outcome.kind === 'sent' ? outcome.at : null,
      upd: outcome.at,
    });
  }
  return rows;
}

/** Counter rows of one delivery beyond which the MTA folds them (a few seconds of sending to many domains). */
const crowdedCounterRows = 2_000;

export function createMtaStore(store: Store): MtaStore {
  const { db } = store;

  return {
    async registerNode(node, now, expiredBefore) {
      const row = { node_id: node.nodeId, host: node.host, pid: node.pid, started_at: now, heartbeat_at: now };
      const taken = await db
        .insertInto('mta_nodes')
        .values(row)
        .onConflict((conflict) =>
          conflict
            .column('node_id')
            .doUpdateSet({ host: node.host, pid: node.pid, started_at: now, heartbeat_at: now })
            .where('mta_nodes.heartbeat_at', '<', expiredBefore),
        )
        .returning('node_id')
        .executeTakeFirst();
      if (taken) return { kind: 'registered' };
      const holder = await db.selectFrom('mta_nodes').selectAll().where('node_id', '=', node.nodeId).executeTakeFirst();
      // Gone between the two statements: try again once.
      if (!holder) return this.registerNode(node, now, expiredBefore);
      return {
        kind: 'held',
        holder: {
          nodeId: holder.node_id,
          host: holder.host,
          pid: Number(holder.pid),
          heartbeatAt: Number(holder.heartbeat_at),
        },
      };
    },

    async takeOverNode(node, previous, now) {
      const result = await db
        .updateTable('mta_nodes')
        .set({ host: node.host, pid: node.pid, started_at: now, heartbeat_at: now })
        .where('node_id', '=', node.nodeId)
        .where('host', '=', previous.host)
        .where('pid', '=', previous.pid)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async heartbeatNode(nodeId, pid, now) {
      const result = await db
        .updateTable('mta_nodes')
        .set({ heartbeat_at: now })
        .where('node_id', '=', nodeId)
        .where('pid', '=', pid)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async unregisterNode(nodeId, pid) {
      await db.deleteFrom('mta_nodes').where('node_id', '=', nodeId).where('pid', '=', pid).execute();
    },

    claimDue: (nodeId, now, limit, leaseMs) => claimDue(store, nodeId, now, limit, leaseMs),

    recordOutcomes: (nodeId, outcomes, within) => recordOutcomes(store, nodeId, outcomes, within),

    async renewClaims(nodeId, now, leaseMs) {
      const result = await db
        .updateTable('delivery_logs')
        .set({ claimed_until: now + leaseMs })
        .where('claimed_by', '=', nodeId)
        .where('status', '=', 'sending')
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async releaseClaims(nodeId, now) {
      const result = await db
        .updateTable('delivery_logs')
        .set({ status: 'pending', claimed_by: null, claimed_until: null, updated_at: now })
        .where('claimed_by', '=', nodeId)
        .where('status', '=', 'sending')
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async recoverExpiredClaims(now) {
      const result = await db
        .updateTable('delivery_logs')
        .set({ status: 'pending', claimed_by: null, claimed_until: null, updated_at: now })
        .where('status', '=', 'sending')
        .where('claimed_until', '<', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async deliveryState(deliveryId) {
      const row = await db.selectFrom('deliveries').select('state').where('id', '=', deliveryId).executeTakeFirst();
      return row?.state;
    },

    async loadDeliveryContent(deliveryId) {
      const row = await db
        .selectFrom('deliveries')
        .select([
          'id',
          'state',
          'from_address',
          'from_name',
          'reply_to',
          'subject_template',
          'html_template',
          'text_template',
          'valid_until',
          'affinity',
          'priority',
          'weight',
          'last_error',
        ])
        .where('id', '=', deliveryId)
        .executeTakeFirst();
      if (!row) return undefined;
      const content: DeliveryContent = {
        id: Number(row.id),
        state: row.state,
        fromAddress: row.from_address,
        fromName: row.from_name,
        replyTo: row.reply_to,
        subjectTemplate: row.subject_template,
        htmlTemplate: row.html_template,
        textTemplate: row.text_template,
        validUntil: row.valid_until === null ? null : Number(row.valid_until),
        affinity: row.affinity,
        priority: Number(row.priority),
        weight: Number(row.weight),
        lastError: row.last_error,
      };
      return content;
    },

    async noteDeliveryProblem(deliveryId, message, now) {
      await db
        .updateTable('deliveries')
        .set({ last_error: message, updated_at: now })
        .where('id', '=', deliveryId)
        .execute();
    },

    async finishCompletedDeliveries(now) {
      const result = await sql<{ id: number }>`
        update deliveries set state = 'finished', finished_at = ${now}, updated_at = ${now}
        -- a delivery pushed to an execution instance (mid-sourcing) is finished by its sync, not here
        where state = 'in_progress' and execution_peer is null and not exists (
          select 1 from delivery_logs l where l.delivery_id = deliveries.id and l.status in ('pending', 'sending')
        )
        returning id`.execute(db);
      return result.rows.map((row) => Number(row.id));
    },

    foldLogCounts: () => foldDeliveryLogCounts(store, crowdedCounterRows),

    async nextDueAt() {
      const row = await db
        .selectFrom('delivery_logs as l')
        .innerJoin('deliveries as d', 'd.id', 'l.delivery_id')
        .select('l.next_attempt_at')
        .where('l.status', '=', 'pending')
        .where('d.state', '=', 'in_progress')
        // mid-sourcing (migration 0008): pushed deliveries are sent by their execution instance.
        .where(sql<boolean>`d.execution_peer is null`)
        .orderBy('l.next_attempt_at')
        .limit(1)
        .executeTakeFirst();
      return row ? Number(row.next_attempt_at) : null;
    },
  };
}

/**
 * Due pending logs of in-progress deliveries to 'sending' for this node. With one delivery due,
 * oldest due first; with several, the batch is split by priority and weight (claimQuotas), each
 * delivery's oldest due first, and what a delivery could not use goes oldest-due-first to the rest.
 */
async function claimDue(
  store: Store,
  nodeId: string,
  now: number,
  limit: number,
  leaseMs: number,
): Promise<ClaimedLog[]> {
  const due = await dueDeliveries(store, now);
  if (due.length <= 1) return claimRows(store, { nodeId, now, limit, leaseMs, deliveryId: due[0]?.deliveryId });
  const claimed: ClaimedLog[] = [];
  for (const [deliveryId, quota] of claimQuotas(due, limit)) {
    const room = Math.min(quota, limit - claimed.length);
    if (room > 0) claimed.push(...(await claimRows(store, { nodeId, now, limit: room, leaseMs, deliveryId })));
  }
  if (claimed.length < limit)
    claimed.push(...(await claimRows(store, { nodeId, now, limit: limit - claimed.length, leaseMs })));
  return claimed;
}

/** In-progress deliveries sent here with at least one due pending log (index delivery_logs_pending_due). */
async function dueDeliveries(store: Store, now: number): Promise<Share[]> {
  const rows = await sql<{ id: number; priority: number; weight: number }>`
    select d.id, d.priority, d.weight from deliveries d
    where d.state = 'in_progress' and d.execution_peer is null and exists (
      select 1 from delivery_logs l where l.delivery_id = d.id and l.status = 'pending' and l.next_attempt_at <= ${now}
    )`.execute(store.db);
  return rows.rows.map((row) => ({
    deliveryId: Number(row.id),
    priority: Number(row.priority),
    weight: Number(row.weight),
  }));
}

async function claimRows(
  store: Store,
  claim: { nodeId: string; now: number; limit: number; leaseMs: number; deliveryId?: number | undefined },
): Promise<ClaimedLog[]> {
  const { db } = store;
  const { nodeId, now, limit } = claim;
  const postgres = store.dialect === 'postgres';
  const lock = postgres ? sql`for update of l skip locked` : sql``;
  const oneDelivery = claim.deliveryId === undefined ? sql`` : sql`and l.delivery_id = ${claim.deliveryId}`;
  const claimedUntil = now + claim.leaseMs;
  // PostgreSQL: SKIP LOCKED lets several MTAs claim side by side without waiting on each
  // other. SQLite: the statement runs under the database write lock, so it is atomic as is.
  const result = await sql<{
    id: number;
    delivery_id: number;
    email: string;
    domain: string;
    data: string;
    attempts: number;
    claimed_until: number;
  }>`
      with due as (
        select l.id from delivery_logs l join deliveries d on d.id = l.delivery_id
        where l.status = 'pending' and l.next_attempt_at <= ${now} and d.state = 'in_progress' ${oneDelivery}
          -- mid-sourcing (migration 0008): a delivery pushed to an execution instance is sent there, never here
          and d.execution_peer is null
        order by l.next_attempt_at limit ${limit} ${lock}
      )
      update delivery_logs set status = 'sending', claimed_by = ${nodeId}, claimed_until = ${claimedUntil}, updated_at = ${now}
      from due where delivery_logs.id = due.id and delivery_logs.status = 'pending'
      returning delivery_logs.id, delivery_logs.delivery_id, delivery_logs.email, delivery_logs.domain, delivery_logs.data, delivery_logs.attempts, delivery_logs.claimed_until`.execute(
    db,
  );
  return result.rows.map(
    (row): ClaimedLog => ({
      id: Number(row.id),
      deliveryId: Number(row.delivery_id),
      email: row.email,
      domain: row.domain,
      data: row.data,
      attempts: Number(row.attempts),
      claimedUntil: Number(row.claimed_until),
    }),
  );
}

/** Every outcome in one statement (or one transaction with the releases), for logs still claimed by `nodeId`. */
async function recordOutcomes(
  store: Store,
  nodeId: string,
  outcomes: readonly Outcome[],
  within?: (trx: Store) => Promise<void>,
): Promise<void> {
  const { db } = store;
  const postgres = store.dialect === 'postgres';
  if (outcomes.length === 0) return;
  const rows = outcomeRows(outcomes);
  const released = outcomes.filter((outcome) => outcome.kind === 'released');
  // One statement for the whole batch: the rows travel as one JSON parameter (no bound-parameter
  // limit, a single statement to prepare) and are joined to delivery_logs by id.
  const json = JSON.stringify(rows);
  const source = postgres
    ? sql`select * from jsonb_to_recordset(cast(${json} as jsonb)) as r(id bigint, st text, inc int, kr int, na bigint, code int, enh text, txt text, ft text, fr text, fc text, mx text, sa bigint, upd bigint)`
    : sql`select json_extract(value, '$.id') as id, json_extract(value, '$.st') as st, json_extract(value, '$.inc') as inc, json_extract(value, '$.kr') as kr,
              json_extract(value, '$.na') as na, json_extract(value, '$.code') as code, json_extract(value, '$.enh') as enh,
              json_extract(value, '$.txt') as txt, json_extract(value, '$.ft') as ft, json_extract(value, '$.fr') as fr,
              json_extract(value, '$.fc') as fc, json_extract(value, '$.mx') as mx, json_extract(value, '$.sa') as sa,
              json_extract(value, '$.upd') as upd
            from json_each(${json})`;
  // SQLite's planner would otherwise walk this node's claims (claimed_by index) and scan the JSON
  // for each: quadratic. Unary + disables those indexes so it loops over the batch by rowid.
  const ownClaim = postgres ? sql`delivery_logs.claimed_by` : sql`+delivery_logs.claimed_by`;
  const ownStatus = postgres ? sql`delivery_logs.status` : sql`+delivery_logs.status`;
  // Only rows still claimed by this node change: a claim taken back (lease expired, operator
  // reset) is never overwritten by a late outcome.
  const updateOutcomes = (executor: Kysely<Database>) =>
    sql`
        with v as (${source})
        update delivery_logs set
          status = v.st, attempts = delivery_logs.attempts + v.inc,
          next_attempt_at = coalesce(v.na, delivery_logs.next_attempt_at),
          claimed_by = null, claimed_until = null,
          last_reply_code = case when v.kr = 1 then delivery_logs.last_reply_code else v.code end,
          last_enhanced_status = case when v.kr = 1 then delivery_logs.last_enhanced_status else v.enh end,
          last_reply_text = case when v.kr = 1 then coalesce(delivery_logs.last_reply_text, v.txt) else v.txt end,
          failure_type = v.ft, failure_reason = v.fr,
          failure_category = case when v.kr = 1 then coalesce(delivery_logs.failure_category, v.fc) else v.fc end,
          mx_host = coalesce(v.mx, delivery_logs.mx_host), sent_at = v.sa, updated_at = v.upd
        from v where delivery_logs.id = v.id and ${ownClaim} = ${nodeId} and ${ownStatus} = 'sending'`.execute(
      executor,
    );
  // Held messages (shaping) come back at their retryAt: one statement per distinct time (usually one).
  const releaseGroups = new Map<number | undefined, number[]>();
  for (const outcome of released) {
    const retryAt = outcome.kind === 'released' ? outcome.retryAt : undefined;
    const ids = releaseGroups.get(retryAt);
    if (ids) ids.push(outcome.logId);
    else releaseGroups.set(retryAt, [outcome.logId]);
  }
  const releaseRows = async (executor: Kysely<Database>) => {
    for (const [retryAt, ids] of releaseGroups) {
      await executor
        .updateTable('delivery_logs')
        .set(
          retryAt === undefined
            ? { status: 'pending', claimed_by: null, claimed_until: null, updated_at: released[0]!.at }
            : {
                status: 'pending',
                claimed_by: null,
                claimed_until: null,
                updated_at: released[0]!.at,
                next_attempt_at: retryAt,
              },
        )
        .where('id', 'in', ids)
        .where('claimed_by', '=', nodeId)
        .where('status', '=', 'sending')
        .execute();
    }
  };
  // The usual batch is one statement, atomic on its own: no BEGIN/COMMIT round trips.
  if (within) {
    await inTransaction(store, async (trx) => {
      if (rows.length > 0) await updateOutcomes(trx.db);
      if (released.length > 0) await releaseRows(trx.db);
      await within(trx);
    });
    return;
  }
  if (released.length === 0) {
    await updateOutcomes(db);
    return;
  }
  if (rows.length === 0) {
    await releaseRows(db);
    return;
  }
  await db.transaction().execute(async (trx) => {
    await updateOutcomes(trx);
    await releaseRows(trx);
  });
}
