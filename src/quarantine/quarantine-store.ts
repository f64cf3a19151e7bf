import { sql, type Selectable } from 'kysely';
import { AppError } from '../common/errors.ts';
import type { AddressRecord, AddressState, TimelineEntry } from './types.ts';
import type { Store } from '../store/database.ts';
import type { AddressEventRow, AddressEventTable, AddressTable } from '../store/tables.ts';

// The quarantine's storage: address rows and their timeline. The decisions (src/quarantine/decide.ts)
// are applied by src/quarantine/address-events.ts between lockAddresses and writeAddressChanges, in
// one transaction per chunk.

const CHUNK = 500;
const MAX_REPLY_TEXT = 2_000;

/**
 * The current rows of `emails` (at most a few hundred), inside the caller's transaction. On
 * PostgreSQL the rows are locked, so two processes deciding on one address serialize.
 */
export async function lockAddresses(store: Store, emails: readonly string[]): Promise<Map<string, AddressRecord>> {
  let query = store.db.selectFrom('addresses').selectAll().where('email', 'in', emails);
  if (store.dialect === 'postgres') query = query.forUpdate();
  return new Map((await query.execute()).map((row) => [row.email, toRecord(row)]));
}

/**
 * Of `pairs` (delivery log id, event source), the ones already in the timeline, as "logId:source".
 * Used for the sources recorded once per log (migration 0016's unique index).
 */
export async function loggedEventKeys(
  store: Store,
  pairs: ReadonlyArray<{ logId: number; source: string }>,
): Promise<Set<string>> {
  const found = new Set<string>();
  const logIds = [...new Set(pairs.map((p) => p.logId))];
  for (let i = 0; i < logIds.length; i += CHUNK) {
    const rows = await store.db
      .selectFrom('address_events')
      .select(['delivery_log_id', 'source'])
      .where('delivery_log_id', 'in', logIds.slice(i, i + CHUNK))
      .where('source', 'in', [...new Set(pairs.map((p) => p.source))])
      .execute();
    for (const row of rows) found.add(`${row.delivery_log_id}:${row.source}`);
  }
  return found;
}

/** Upserts decided address records and appends their timeline entries (inside the caller's transaction). */
export async function writeAddressChanges(
  store: Store,
  records: readonly AddressRecord[],
  entries: readonly TimelineEntry[],
): Promise<void> {
  if (records.length > 0) {
    await store.db
      .insertInto('addresses')
      .values(records.map(fromRecord))
      .onConflict((oc) =>
        oc.column('email').doUpdateSet((eb) => ({
          state: eb.ref('excluded.state'),
          error_count: eb.ref('excluded.error_count'),
          last_error_at: eb.ref('excluded.last_error_at'),
          reason: eb.ref('excluded.reason'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }
  for (let j = 0; j < entries.length; j += CHUNK) {
    await store.db
      .insertInto('address_events')
      .values(entries.slice(j, j + CHUNK).map(toEventRow))
      // A concurrent writer recorded the same once-per-log event first (unique index, migration 0016).
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/**
 * The verdict types (hard, soft, ignored) of the timeline rows of one delivery log from `source`,
 * at most `limit` (by the email index: the rows of one address are few).
 */
export async function logEventTypes(
  store: Store,
  where: { email: string; logId: number; source: string; limit: number },
): Promise<(string | null)[]> {
  const rows = await store.db
    .selectFrom('address_events')
    .select('type')
    .where('email', '=', where.email.trim().toLowerCase())
    .where('delivery_log_id', '=', where.logId)
    .where('source', '=', where.source)
    .limit(where.limit)
    .execute();
  return rows.map((row) => row.type);
}

export async function getAddress(store: Store, email: string): Promise<AddressRecord | undefined> {
  const row = await store.db
    .selectFrom('addresses')
    .selectAll()
    .where('email', '=', email.trim().toLowerCase())
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

export async function addressTimeline(store: Store, email: string, limit = 200): Promise<AddressEventRow[]> {
  const rows = await store.db
    .selectFrom('address_events')
    .selectAll()
    .where('email', '=', email.trim().toLowerCase())
    .orderBy('at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.reverse().map((row) => ({
    ...row,
    id: Number(row.id),
    at: Number(row.at),
    delivery_id: numOrNull(row.delivery_id),
    delivery_log_id: numOrNull(row.delivery_log_id),
  }));
}

export interface AddressFilter {
  /** States to list; default every state but `valid`. */
  states?: AddressState[];
  /** Only addresses of this domain. */
  domain?: string;
  limit?: number;
  /** Keyset page: the addresses listed after this one (newest update first, then by email). */
  after?: { updatedAt: number; email: string };
}

/** The keyset cursor after `address` in listAddresses' order, as `<updated_at ms>~<email>`. */
function addressCursor(address: Pick<AddressRecord, 'updatedAt' | 'email'>): string {
  return `${address.updatedAt}~${address.email}`;
}

/** Reads addressCursor's text back; INPUT_INVALID naming `after` when it is not one. */
export function parseAddressCursor(value: string): { updatedAt: number; email: string } {
  const match = /^(\d{1,16})~(.+)$/.exec(value);
  if (!match || !Number.isSafeInteger(Number(match[1])))
    throw new AppError('INPUT_INVALID', 'after: the cursor of the previous page (<time>~<email>, as `next` gives it)');
  return { updatedAt: Number(match[1]), email: match[2]! };
}

export async function listAddresses(store: Store, filter: AddressFilter = {}): Promise<AddressRecord[]> {
  let query = store.db
    .selectFrom('addresses')
    .selectAll()
    .where('state', 'in', filter.states ?? ['with_errors', 'quarantined', 'denylisted', 'allowlisted']);
  if (filter.domain) query = query.where(inDomain(filter.domain));
  const after = filter.after;
  if (after)
    query = query.where((eb) =>
      eb.or([
        eb('updated_at', '<', after.updatedAt),
        eb.and([eb('updated_at', '=', after.updatedAt), eb('email', '>', after.email)]),
      ]),
    );
  const rows = await query
    .orderBy('updated_at', 'desc')
    .orderBy('email')
    .limit(filter.limit ?? 100)
    .execute();
  return rows.map(toRecord);
}

/** One page of listAddresses and the cursor of the next one (null on the last page). */
export async function pageAddresses(
  store: Store,
  filter: AddressFilter & { limit: number },
): Promise<{ rows: AddressRecord[]; next: string | null }> {
  const rows = await listAddresses(store, { ...filter, limit: filter.limit + 1 });
  const page = rows.slice(0, filter.limit);
  const last = page.at(-1);
  return { rows: page, next: rows.length > filter.limit && last ? addressCursor(last) : null };
}

export async function countAddressesByState(store: Store): Promise<Record<string, number>> {
  const rows = await store.db
    .selectFrom('addresses')
    .select(['state', sql<number>`count(*)`.as('n')])
    .groupBy('state')
    .execute();
  return Object.fromEntries(rows.map((row) => [row.state, Number(row.n)]));
}

/**
 * One page of a domain's addresses a bulk release may apply to, in email order after `after`:
 * quarantined or with_errors, last error at or after `since`, not put there by an operator.
 */
export async function releasableAddresses(
  store: Store,
  filter: { domain: string; since: number; after: string; limit: number },
): Promise<string[]> {
  const rows = await store.db
    .selectFrom('addresses')
    .select('email')
    .where(inDomain(filter.domain))
    .where('state', 'in', ['quarantined', 'with_errors'])
    .where((eb) => eb.or([eb('reason', 'is', null), eb('reason', '!=', 'operator')]))
    .where('last_error_at', '>=', filter.since)
    .where('email', '>', filter.after)
    .orderBy('email')
    .limit(filter.limit)
    .execute();
  return rows.map((row) => row.email);
}

/**
 * Up to `limit` addresses the sweep may change: quarantined for mailbox_full with the last error at
 * or before `fullBefore`, and with_errors with the last error at or before `quietBefore`.
 */
export async function sweepCandidates(
  store: Store,
  bounds: { fullBefore: number; quietBefore: number; limit: number },
): Promise<AddressRecord[]> {
  const rows = await store.db
    .selectFrom('addresses')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb.and([
          eb('state', '=', 'quarantined'),
          eb('reason', '=', 'mailbox_full'),
          eb('last_error_at', '<=', bounds.fullBefore),
        ]),
        eb.and([eb('state', '=', 'with_errors'), eb('last_error_at', '<=', bounds.quietBefore)]),
      ]),
    )
    .limit(bounds.limit)
    .execute();
  return rows.map(toRecord);
}

/**
 * `email like '%@domain'`, with LIKE wildcards escaped (`_` is legal in DNS labels). A domain given
 * with its `@` ("@bigisp.com") is that domain: it matched nothing, and a release said "released 0".
 */
function inDomain(domain: string) {
  const escaped = domain
    .trim()
    .replace(/^@/, '')
    .toLowerCase()
    .replace(/[\\%_]/g, (c) => `\\${c}`);
  return sql<boolean>`email like ${`%@${escaped}`} escape '\\'`;
}

function toRecord(row: Selectable<AddressTable>): AddressRecord {
  return {
    email: row.email,
    state: row.state,
    errorCount: Number(row.error_count),
    lastErrorAt: numOrNull(row.last_error_at),
    reason: row.reason,
    updatedAt: Number(row.updated_at),
  };
}

function fromRecord(record: AddressRecord): AddressTable {
  return {
    email: record.email,
    state: record.state,
    error_count: record.errorCount,
    last_error_at: record.lastErrorAt,
    reason: record.reason,
    updated_at: record.updatedAt,
  };
}

function toEventRow(entry: TimelineEntry): Omit<AddressEventTable, 'id'> {
  return {
    email: entry.email,
    at: entry.at,
    source: entry.source,
    delivery_id: entry.deliveryId,
    delivery_log_id: entry.deliveryLogId,
    reply_text: entry.replyText === null ? null : entry.replyText.slice(0, MAX_REPLY_TEXT),
    category: entry.category,
    reason: entry.reason,
    type: entry.type,
    rule_id: entry.ruleId,
    pack_version: entry.packVersion,
    state_before: entry.stateBefore,
    state_after: entry.stateAfter,
    error_count: entry.errorCount,
    counted: entry.counted ? 1 : 0,
    note: entry.note,
  };
}

function numOrNull(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}
