import { sql, type Generated, type Kysely, type Selectable } from 'kysely';
import { decideAll, decideSweep } from '../quarantine/decide.ts';
import type { AddressEvent, AddressRecord, AddressState, QuarantineSettings, TimelineEntry } from '../quarantine/types.ts';
import type { Store } from './database.ts';
import type { AddressTable, Database } from './tables.ts';

// The quarantine's storage: address rows and their timeline. Decisions are pure
// (src/quarantine/decide.ts); this file loads the rows a batch of events touches, folds the events
// over them and writes rows and timeline in one transaction per chunk.

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

export type QuarantineTables = { address_events: AddressEventTable };
export type AddressEventRow = Selectable<AddressEventTable>;

const CHUNK = 500;
const MAX_REPLY_TEXT = 2_000;
const DAY_MS = 86_400_000;

export function quarantineDb(store: Store): Kysely<Database & QuarantineTables> {
  return store.db.withTables<QuarantineTables>();
}

export interface ApplyResult {
  events: number;
  addresses: number;
  /** Addresses whose state changed, by the state they entered. */
  entered: Partial<Record<AddressState, number>>;
}

/**
 * Applies events (any order, any addresses) to the address rows and appends the timeline. Events of
 * one address are applied in time order. Used by the MTA's outcome hook, the inbound role, the
 * tracking unsubscribe route, the CLI and the periodic sweep.
 */
export async function applyAddressEvents(store: Store, events: readonly AddressEvent[], settings: QuarantineSettings, now: number): Promise<ApplyResult> {
  const result: ApplyResult = { events: 0, addresses: 0, entered: {} };
  const byEmail = new Map<string, AddressEvent[]>();
  for (const event of events) {
    const email = event.email.trim().toLowerCase();
    if (!email) continue;
    const list = byEmail.get(email) ?? [];
    list.push({ ...event, email });
    byEmail.set(email, list);
  }
  const emails = [...byEmail.keys()];
  const db = quarantineDb(store);
  for (let i = 0; i < emails.length; i += CHUNK) {
    const chunk = emails.slice(i, i + CHUNK);
    await db.transaction().execute(async (trx) => {
      // PostgreSQL: lock the rows so two processes deciding on one address serialize.
      let query = trx.selectFrom('addresses').selectAll().where('email', 'in', chunk);
      if (store.dialect === 'postgres') query = query.forUpdate();
      const current = new Map((await query.execute()).map((row) => [row.email, toRecord(row)]));
      const rows: AddressTable[] = [];
      const entries: TimelineEntry[] = [];
      for (const email of chunk) {
        const list = byEmail.get(email)!.sort((a, b) => a.at - b.at);
        const before = current.get(email);
        const decided = decideAll(before, list, now, settings);
        if (!decided.record) continue;
        rows.push(fromRecord(decided.record));
        entries.push(...decided.entries);
        if (decided.record.state !== (before?.state ?? 'valid')) result.entered[decided.record.state] = (result.entered[decided.record.state] ?? 0) + 1;
      }
      if (rows.length > 0) {
        await trx
          .insertInto('addresses')
          .values(rows)
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
        await trx.insertInto('address_events').values(entries.slice(j, j + CHUNK).map(toEventRow)).execute();
      }
      result.events += entries.length;
      result.addresses += rows.length;
    });
  }
  return result;
}

export async function getAddress(store: Store, email: string): Promise<AddressRecord | undefined> {
  const row = await store.db.selectFrom('addresses').selectAll().where('email', '=', email.trim().toLowerCase()).executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

export async function addressTimeline(store: Store, email: string, limit = 200): Promise<AddressEventRow[]> {
  const rows = await quarantineDb(store)
    .selectFrom('address_events')
    .selectAll()
    .where('email', '=', email.trim().toLowerCase())
    .orderBy('at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return rows.reverse().map((row) => ({ ...row, id: Number(row.id), at: Number(row.at), delivery_id: numOrNull(row.delivery_id), delivery_log_id: numOrNull(row.delivery_log_id) }));
}

export interface AddressFilter {
  /** States to list; default every state but `valid`. */
  states?: AddressState[];
  /** Only addresses of this domain. */
  domain?: string;
  limit?: number;
}

export async function listAddresses(store: Store, filter: AddressFilter = {}): Promise<AddressRecord[]> {
  let query = store.db.selectFrom('addresses').selectAll().where('state', 'in', filter.states ?? ['with_errors', 'quarantined', 'denylisted', 'allowlisted']);
  if (filter.domain) query = query.where(inDomain(filter.domain));
  const rows = await query.orderBy('updated_at', 'desc').orderBy('email').limit(filter.limit ?? 100).execute();
  return rows.map(toRecord);
}

export async function countAddressesByState(store: Store): Promise<Record<string, number>> {
  const rows = await store.db.selectFrom('addresses').select(['state', sql<number>`count(*)`.as('n')]).groupBy('state').execute();
  return Object.fromEntries(rows.map((row) => [row.state, Number(row.n)]));
}

export interface ReleaseRequest {
  domain: string;
  /** Addresses whose last error is at or after this time (epoch ms). */
  since: number;
  note: string;
  dryRun?: boolean;
}

/**
 * Bulk release after an ISP outage that misfired: quarantined and with_errors addresses of one
 * domain whose last error is recent. Operator decisions (quarantined by hand) and denylisted
 * addresses are left alone. Works through the domain in chunks; returns how many were released.
 */
export async function releaseAddresses(store: Store, request: ReleaseRequest, settings: QuarantineSettings, now: number): Promise<{ released: number; emails: string[] }> {
  let released = 0;
  const sample: string[] = [];
  let after = '';
  for (;;) {
    const rows = await store.db
      .selectFrom('addresses')
      .select('email')
      .where(inDomain(request.domain))
      .where('state', 'in', ['quarantined', 'with_errors'])
      .where((eb) => eb.or([eb('reason', 'is', null), eb('reason', '!=', 'operator')]))
      .where('last_error_at', '>=', request.since)
      .where('email', '>', after)
      .orderBy('email')
      .limit(CHUNK)
      .execute();
    if (rows.length === 0) break;
    after = rows[rows.length - 1]!.email;
    const emails = rows.map((row) => row.email);
    if (sample.length < 20) sample.push(...emails.slice(0, 20 - sample.length));
    if (!request.dryRun) await applyAddressEvents(store, emails.map((email) => ({ email, at: now, source: 'operator' as const, action: 'release' as const, note: request.note })), settings, now);
    released += emails.length;
  }
  return { released, emails: sample };
}

/** Releases mailbox_full quarantines and resets quiet with_errors counters; returns how many addresses changed. */
export async function sweepAddresses(store: Store, settings: QuarantineSettings, now: number): Promise<number> {
  let changed = 0;
  const fullBefore = now - settings.mailboxFullReleaseDays * DAY_MS;
  const quietBefore = now - settings.errorResetDays * DAY_MS;
  for (;;) {
    const rows = await store.db
      .selectFrom('addresses')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([eb('state', '=', 'quarantined'), eb('reason', '=', 'mailbox_full'), eb('last_error_at', '<=', fullBefore)]),
          eb.and([eb('state', '=', 'with_errors'), eb('last_error_at', '<=', quietBefore)]),
        ]),
      )
      .limit(CHUNK)
      .execute();
    const events = rows.map((row) => decideSweep(toRecord(row), now, settings)).filter((event): event is AddressEvent => event !== undefined);
    if (events.length === 0) return changed;
    await applyAddressEvents(store, events, settings, now);
    changed += events.length;
  }
}

/** `email like '%@domain'`, with LIKE wildcards escaped (`_` is legal in DNS labels). */
function inDomain(domain: string) {
  const escaped = domain.trim().toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`);
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
  return { email: record.email, state: record.state, error_count: record.errorCount, last_error_at: record.lastErrorAt, reason: record.reason, updated_at: record.updatedAt };
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
