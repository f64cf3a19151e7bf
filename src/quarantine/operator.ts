import { z } from 'zod';
import { validateAddress } from '../audience/address.ts';
import { AppError } from '../common/errors.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';
import type { AddressEventRow } from '../store/tables.ts';
import { applyAddressEvents, releaseAddresses, type ApplyResult } from './address-events.ts';
import { addressTimeline, getAddress } from './quarantine-store.ts';
import { quarantineSettings } from './settings.ts';
import type { AddressRecord, OperatorAction } from './types.ts';

// What an operator sees and does on addresses, shared by `herald quarantine` and the API: an
// address with its timeline, releases (one address or a domain since a date), allow/denylisting.

export function addressView(row: AddressRecord) {
  return {
    email: row.email,
    state: row.state,
    errorCount: row.errorCount,
    lastErrorAt: iso(row.lastErrorAt),
    reason: row.reason,
    updatedAt: iso(row.updatedAt),
  };
}

export function eventView(e: AddressEventRow) {
  return {
    at: new Date(e.at).toISOString(),
    source: e.source,
    deliveryId: e.delivery_id,
    deliveryLogId: e.delivery_log_id,
    replyText: e.reply_text,
    category: e.category,
    reason: e.reason,
    type: e.type,
    ruleId: e.rule_id,
    packVersion: e.pack_version,
    stateBefore: e.state_before,
    stateAfter: e.state_after,
    errorCount: Number(e.error_count),
    counted: Number(e.counted) === 1,
    note: e.note,
  };
}

/** An address and its timeline; an address Herald never saw is plain `valid` with no events. */
/** Timeline rows `showAddress` returns at most, the most recent first. */
export const timelineLimit = 200;

export async function showAddress(store: Store, address: string) {
  const row = await getAddress(store, address);
  // Oldest first: one more than shown tells whether older events exist; it is the oldest one read.
  const read = await addressTimeline(store, address, timelineLimit + 1);
  const timeline = read.slice(-timelineLimit);
  const state = row
    ? addressView(row)
    : {
        email: address.trim().toLowerCase(),
        state: 'valid' as const,
        errorCount: 0,
        lastErrorAt: null,
        reason: null,
        updatedAt: null,
      };
  return {
    address: state,
    known: row !== undefined || timeline.length > 0,
    timeline: timeline.map(eventView),
    events: timeline,
    /** Older events exist beyond the timelineLimit shown. */
    olderEventsNotShown: read.length > timelineLimit,
  };
}

export interface ReleaseResult {
  released: number;
  emails: string[];
}

/** One address back to valid (nothing to do when it is valid already). */
export async function releaseAddress(
  store: Store,
  config: HeraldConfig,
  request: { email: string; note?: string | undefined; dryRun: boolean },
  now: number,
): Promise<ReleaseResult> {
  const row = await getAddress(store, request.email);
  if (!row || row.state === 'valid') return { released: 0, emails: [] };
  if (!request.dryRun)
    await applyAddressEvents(
      store,
      [operatorEvent(request.email, 'release', now, request.note)],
      quarantineSettings(config),
      now,
    );
  return { released: 1, emails: [row.email] };
}

const isoDate = z.string().date();
const isoDateTime = z.string().datetime({ offset: true, local: true });

/** How a bulk release's `since` is written, for the error that refuses another form. */
export const RELEASE_SINCE_FORMS = 'an ISO date (2026-04-10) or date-time (2026-04-10T06:00Z; UTC without an offset)';

/**
 * The time a bulk release starts from (epoch ms): an ISO date (its midnight UTC) or date-time (UTC
 * when it has no offset), undefined for anything else. Date.parse took "10" for 1 October 2001,
 * "April 10" for 10 April 2001 (the whole domain released), "2026-02-30" for 2 March, and a
 * date-time without offset in the time zone of the machine.
 */
export function parseReleaseSince(text: string): number | undefined {
  if (isoDate.safeParse(text).success) return Date.parse(`${text}T00:00:00Z`);
  if (!isoDateTime.safeParse(text).success) return undefined;
  return Date.parse(/(?:Z|[+-]\d{2}(?::?\d{2})?)$/i.test(text) ? text : `${text}Z`);
}

/** Every address of a domain whose last error is at or after `since` (after an ISP outage misfired). */
export async function releaseDomain(
  store: Store,
  config: HeraldConfig,
  request: { domain: string; since: number; sinceText: string; note?: string | undefined; dryRun: boolean },
  now: number,
): Promise<ReleaseResult> {
  return releaseAddresses(
    store,
    {
      domain: request.domain,
      since: request.since,
      note: request.note ?? `bulk release of ${request.domain} since ${request.sinceText}`,
      dryRun: request.dryRun,
    },
    quarantineSettings(config),
    now,
  );
}

export async function listAddress(
  store: Store,
  config: HeraldConfig,
  request: { email: string; action: 'allowlist' | 'denylist'; note?: string | undefined },
  now: number,
): Promise<AddressRecord> {
  // "a@x.com, b@x.com" was stored as one address (neither listed), an empty one failed with a TypeError.
  const check = validateAddress(request.email.trim());
  if (!check.ok)
    throw new AppError(
      'INPUT_INVALID',
      `${check.message} (${request.email.slice(0, 100)}): nothing was ${request.action}ed`,
    );
  await applyAddressEvents(
    store,
    [operatorEvent(request.email, request.action, now, request.note)],
    quarantineSettings(config),
    now,
  );
  return (await getAddress(store, request.email))!;
}

/**
 * Bulk suppression (a list from a CRM, a former provider's bounces): every address denylisted, or
 * none when one of them is not an address (the error names each by its index).
 */
export async function suppressAddresses(
  store: Store,
  config: HeraldConfig,
  request: { emails: readonly string[]; note?: string | undefined },
  now: number,
): Promise<ApplyResult> {
  const errors = request.emails.flatMap((email, index) => {
    const check = validateAddress(email);
    return check.ok ? [] : [{ path: `/addresses/${index}`, message: `${check.message} (${email.slice(0, 100)})` }];
  });
  if (errors.length > 0)
    throw new AppError(
      'INPUT_INVALID',
      `${errors.length} of ${request.emails.length} entries are not addresses; nothing was suppressed`,
      {
        details: { errors: errors.slice(0, 100) },
      },
    );
  const note = request.note ?? 'bulk suppression';
  return applyAddressEvents(
    store,
    request.emails.map((email) => operatorEvent(email, 'denylist', now, note)),
    quarantineSettings(config),
    now,
  );
}

export function operatorEvent(email: string, action: OperatorAction, now: number, note: string | undefined) {
  return { email, at: now, source: 'operator' as const, action, note: note ?? `operator ${action}` };
}

function iso(at: number | null): string | null {
  return at === null ? null : new Date(at).toISOString();
}
