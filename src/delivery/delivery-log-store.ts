import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type { DeliveryLogRow, DeliveryLogStatus } from '../store/tables.ts';

// A delivery's logs, one page at a time: keyset pagination on (delivery_id, id) (index of migration
// 0015), so the thousandth page of a delivery with a million logs costs what the first one does.

export interface DeliveryLogFilter {
  status?: DeliveryLogStatus | undefined;
  domain?: string | undefined;
  failureReason?: string | undefined;
  email?: string | undefined;
  mxHost?: string | undefined;
  failureType?: string | undefined;
  failureCategory?: string | undefined;
}

export async function pageDeliveryLogs(
  store: Store,
  deliveryId: number,
  filter: DeliveryLogFilter,
  page: { afterId: number; limit: number },
): Promise<DeliveryLogRow[]> {
  let query = store.db
    .selectFrom('delivery_logs')
    .selectAll()
    .where('delivery_id', '=', deliveryId)
    .where('id', '>', page.afterId)
    .orderBy('id')
    .limit(page.limit);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.domain !== undefined) query = query.where('domain', '=', filter.domain);
  if (filter.failureReason !== undefined) query = query.where('failure_reason', '=', filter.failureReason);
  if (filter.email !== undefined)
    query = query.where('email', '=', filter.email).where('address_key', 'in', addressKeysOf(filter.email));
  if (filter.mxHost !== undefined) query = query.where('mx_host', '=', filter.mxHost);
  if (filter.failureType !== undefined)
    query = query.where('failure_type', '=', filter.failureType as 'hard' | 'soft' | 'ignored');
  if (filter.failureCategory !== undefined) query = query.where('failure_category', '=', filter.failureCategory);
  return query.execute();
}

/** One recipient's personalization data for a delivery: its delivery log's once prepared, else its list's. */
export async function recipientDataFor(
  store: Store,
  delivery: { id: number; list_id: number | null },
  email: string,
): Promise<{ email: string; data: string } | undefined> {
  const log = await store.db
    .selectFrom('delivery_logs')
    .select(['email', 'data'])
    .where('delivery_id', '=', delivery.id)
    .where('email', '=', email)
    .where('address_key', 'in', addressKeysOf(email))
    .executeTakeFirst();
  if (log || delivery.list_id === null) return log;
  return store.db
    .selectFrom('recipients')
    .select(['email', 'data'])
    .where('list_id', '=', delivery.list_id)
    .where('email', '=', email)
    .executeTakeFirst();
}

/**
 * The address keys a log with exactly this email can have (migration 0032), computed by the database
 * as preparation computes them: the email itself (mid-sourcing parts, older logs), lower-cased (the
 * default), or with only the domain lower-cased (delivery.foldLocalPartCase false). Matching them lets
 * the unique (delivery_id, address_key) index find the log: there is no index on the email alone.
 */
function addressKeysOf(email: string) {
  const at = email.lastIndexOf('@');
  const text = (value: string) => sql<string>`cast(${value} as text)`;
  return [
    text(email),
    sql<string>`lower(${text(email)})`,
    sql<string>`${text(email.slice(0, at + 1))} || lower(${text(email.slice(at + 1))})`,
  ];
}
