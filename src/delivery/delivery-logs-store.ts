import type { Store } from '../store/database.ts';
import type { DeliveryLogStatus } from '../store/tables.ts';

// `herald delivery logs N`: the delivery logs behind a doctor finding (or any question about who
// got what reply), filtered on the columns the doctor groups by. Bounded by `limit`.

export interface DeliveryLogFilters {
  status?: DeliveryLogStatus;
  domain?: string;
  mxHost?: string;
  code?: number;
  enhanced?: string;
  reason?: string;
  category?: string;
}

export interface DeliveryLogLine {
  id: number;
  email: string;
  domain: string;
  status: DeliveryLogStatus;
  attempts: number;
  mxHost: string | null;
  code: number | null;
  enhanced: string | null;
  reply: string | null;
  reason: string | null;
  category: string | null;
  nextAttemptAt: number;
  updatedAt: number;
}

export async function listDeliveryLogs(
  store: Store,
  deliveryId: number,
  filters: DeliveryLogFilters,
  limit: number,
): Promise<DeliveryLogLine[]> {
  let query = store.db
    .selectFrom('delivery_logs')
    .select([
      'id',
      'email',
      'domain',
      'status',
      'attempts',
      'mx_host',
      'last_reply_code',
      'last_enhanced_status',
      'last_reply_text',
      'failure_reason',
      'failure_category',
      'next_attempt_at',
      'updated_at',
    ])
    .where('delivery_id', '=', deliveryId);
  if (filters.status !== undefined) query = query.where('status', '=', filters.status);
  if (filters.domain !== undefined) query = query.where('domain', '=', filters.domain.toLowerCase());
  if (filters.mxHost !== undefined) query = query.where('mx_host', '=', filters.mxHost.toLowerCase());
  if (filters.code !== undefined) query = query.where('last_reply_code', '=', filters.code);
  if (filters.enhanced !== undefined) query = query.where('last_enhanced_status', '=', filters.enhanced);
  if (filters.reason !== undefined) query = query.where('failure_reason', '=', filters.reason);
  if (filters.category !== undefined) query = query.where('failure_category', '=', filters.category);
  const rows = await query.orderBy('id').limit(limit).execute();
  return rows.map((row) => ({
    id: Number(row.id),
    email: row.email,
    domain: row.domain,
    status: row.status,
    attempts: Number(row.attempts),
    mxHost: row.mx_host,
    code: row.last_reply_code === null ? null : Number(row.last_reply_code),
    enhanced: row.last_enhanced_status,
    reply: row.last_reply_text,
    reason: row.failure_reason,
    category: row.failure_category,
    nextAttemptAt: Number(row.next_attempt_at),
    updatedAt: Number(row.updated_at),
  }));
}

/**
 * `herald delivery release-stuck`: logs left in `sending` by a node whose claim lease expired go
 * back to pending (attempts unchanged). One conditional statement: a claim renewed meanwhile by a
 * live MTA is not touched, so no message can be sent twice by this.
 */
export async function releaseExpiredClaims(store: Store, now: number): Promise<{ released: number; nodes: string[] }> {
  const nodes = await store.db
    .selectFrom('delivery_logs')
    .select('claimed_by')
    .distinct()
    .where('status', '=', 'sending')
    .where('claimed_until', '<', now)
    .execute();
  const result = await store.db
    .updateTable('delivery_logs')
    .set({ status: 'pending', claimed_by: null, claimed_until: null, updated_at: now })
    .where('status', '=', 'sending')
    .where('claimed_until', '<', now)
    .executeTakeFirst();
  return {
    released: Number(result.numUpdatedRows),
    nodes: nodes.map((row) => row.claimed_by ?? '(none)').sort(),
  };
}
