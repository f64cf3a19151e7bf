import { AppError, describeError } from '../common/errors.ts';
import { inTransaction, type Store } from '../store/database.ts';
import { decideAll, decideSweep, isReleasable } from './decide.ts';
import {
  lockAddresses,
  loggedEventKeys,
  releasableAddresses,
  sweepCandidates,
  writeAddressChanges,
} from './quarantine-store.ts';
import type { AddressEvent, AddressRecord, AddressState, QuarantineSettings, TimelineEntry } from './types.ts';

// Applying address events: for each chunk of addresses, one transaction reads (and on PostgreSQL
// locks) their rows, folds the events over them with the pure decisions of decide.ts, and writes the
// rows and the timeline. Used by the MTA's outcome hook, the inbound role, the tracking unsubscribe
// route, the CLI and the periodic sweep.

const CHUNK = 500;
const DAY_MS = 86_400_000;
/** Facts about one delivery log: recorded once per log, a replay changes nothing (migration 0016). */
const ONCE_PER_LOG = new Set<string>(['unsubscribe', 'complaint']);

export interface ApplyResult {
  events: number;
  /** Events skipped because their log already has one of that kind (a replay). */
  duplicates: number;
  addresses: number;
  /** Addresses whose state changed, by the state they entered. */
  entered: Partial<Record<AddressState, number>>;
}

/**
 * Applies events (any order, any addresses) to the address rows and appends the timeline. Events of
 * one address are applied in time order. One transaction per chunk of addresses.
 */
export function applyAddressEvents(
  store: Store,
  events: readonly AddressEvent[],
  settings: QuarantineSettings,
  now: number,
  stillApplies?: StillApplies,
): Promise<ApplyResult> {
  return applyByChunk(events, (work) => inTransaction(store, work), settings, now, stillApplies);
}

/**
 * For events chosen from rows read before their transaction (the sweep, bulk releases): whether one
 * still applies to the row as locked. A complaint committed in between must not be released.
 */
export type StillApplies = (event: AddressEvent, current: AddressRecord | undefined) => boolean;

/**
 * The same inside a transaction the caller holds (`trx`), so the events commit with the caller's
 * own writes: an MTA outcome and the address events it causes are one fact.
 */
export function applyAddressEventsWithin(
  trx: Store,
  events: readonly AddressEvent[],
  settings: QuarantineSettings,
  now: number,
): Promise<ApplyResult> {
  return applyByChunk(events, (work) => work(trx), settings, now);
}

/** Runs the work of one chunk of addresses in a transaction (its own, or the caller's). */
type ChunkRunner = (work: (trx: Store) => Promise<void>) => Promise<void>;

async function applyByChunk(
  events: readonly AddressEvent[],
  run: ChunkRunner,
  settings: QuarantineSettings,
  now: number,
  stillApplies?: StillApplies,
): Promise<ApplyResult> {
  const result: ApplyResult = { events: 0, duplicates: 0, addresses: 0, entered: {} };
  const byEmail = new Map<string, AddressEvent[]>();
  const onceKeys = new Set<string>();
  for (const event of events) {
    const key = onceKey(event);
    if (key !== undefined) {
      if (onceKeys.has(key)) {
        result.duplicates++;
        continue;
      }
      onceKeys.add(key);
    }
    const email = event.email.trim().toLowerCase();
    if (!email) continue;
    const list = byEmail.get(email) ?? [];
    list.push({ ...event, email });
    byEmail.set(email, list);
  }
  const emails = [...byEmail.keys()];
  for (let i = 0; i < emails.length; i += CHUNK) {
    const chunk = emails.slice(i, i + CHUNK);
    await run(async (trx) => {
      const current = await lockAddresses(trx, chunk);
      // After the lock: a concurrent replay of the same log's event waits here, then sees it.
      const once = chunk.flatMap((email) =>
        byEmail
          .get(email)!
          .flatMap((e) => (onceKey(e) === undefined ? [] : [{ logId: e.deliveryLogId!, source: e.source }])),
      );
      const known = once.length > 0 ? await loggedEventKeys(trx, once) : new Set<string>();
      const records: AddressRecord[] = [];
      const entries: TimelineEntry[] = [];
      for (const email of chunk) {
        const fresh = byEmail.get(email)!.filter((e) => {
          if (stillApplies && !stillApplies(e, current.get(email))) return false;
          const key = onceKey(e);
          if (key === undefined || !known.has(key)) return true;
          result.duplicates++;
          return false;
        });
        if (fresh.length === 0) continue;
        const list = fresh.sort((a, b) => a.at - b.at);
        const before = current.get(email);
        const decided = decideAll(before, list, now, settings);
        if (!decided.record) continue;
        records.push(decided.record);
        entries.push(...decided.entries);
        if (decided.record.state !== (before?.state ?? 'valid'))
          result.entered[decided.record.state] = (result.entered[decided.record.state] ?? 0) + 1;
      }
      await writeAddressChanges(trx, records, entries);
      result.events += entries.length;
      result.addresses += records.length;
    });
  }
  return result;
}

function onceKey(event: AddressEvent): string | undefined {
  return event.deliveryLogId != null && ONCE_PER_LOG.has(event.source)
    ? `${event.deliveryLogId}:${event.source}`
    : undefined;
}

export interface ReleaseRequest {
  domain: string;
  /** Addresses whose last error is at or after this time (epoch ms). */
  since: number;
  note: string;
  dryRun?: boolean;
  /** Who releases: an operator (default), or Herald itself after a mass rejection (`schedule`). */
  source?: 'operator' | 'schedule';
}

/**
 * Bulk release after an ISP outage that misfired: quarantined and with_errors addresses of one
 * domain whose last error is recent. Operator decisions (quarantined by hand) and denylisted
 * addresses are left alone. Works through the domain in chunks; returns how many were released.
 */
export async function releaseAddresses(
  store: Store,
  request: ReleaseRequest,
  settings: QuarantineSettings,
  now: number,
): Promise<{ released: number; emails: string[] }> {
  const progress = { released: 0, sample: [] as string[] };
  try {
    await releaseInChunks(store, request, settings, now, progress);
  } catch (error) {
    if (progress.released === 0) throw error;
    // Each chunk commits on its own: say what is done, so nobody takes it for nothing done.
    const cause = error instanceof AppError ? error : undefined;
    throw new AppError(
      cause?.code ?? 'INTERNAL',
      `released ${progress.released} address(es) before this failure, the rest untouched (running the release again is safe: it takes only what is still releasable): ${describeError(error)}`,
      { cause: error, details: { ...cause?.details, released: progress.released } },
    );
  }
  return { released: progress.released, emails: progress.sample };
}

async function releaseInChunks(
  store: Store,
  request: ReleaseRequest,
  settings: QuarantineSettings,
  now: number,
  progress: { released: number; sample: string[] },
): Promise<void> {
  let after = '';
  for (;;) {
    const emails = await releasableAddresses(store, {
      domain: request.domain,
      since: request.since,
      after,
      limit: CHUNK,
    });
    if (emails.length === 0) return;
    after = emails[emails.length - 1]!;
    if (progress.sample.length < 20) progress.sample.push(...emails.slice(0, 20 - progress.sample.length));
    if (request.dryRun) {
      progress.released += emails.length;
      continue;
    }
    const applied = await applyAddressEvents(
      store,
      emails.map((email) => ({
        email,
        at: now,
        source: request.source ?? 'operator',
        action: 'release' as const,
        note: request.note,
      })),
      settings,
      now,
      (_event, current) => current !== undefined && isReleasable(current, request.since),
    );
    progress.released += applied.addresses;
  }
}

/** Releases mailbox_full quarantines and resets quiet with_errors counters; returns how many addresses changed. */
export async function sweepAddresses(store: Store, settings: QuarantineSettings, now: number): Promise<number> {
  let changed = 0;
  const fullBefore = now - settings.mailboxFullReleaseDays * DAY_MS;
  const quietBefore = now - settings.errorResetDays * DAY_MS;
  for (;;) {
    const candidates = await sweepCandidates(store, { fullBefore, quietBefore, limit: CHUNK });
    const events = candidates
      .map((record) => decideSweep(record, now, settings))
      .filter((event): event is AddressEvent => event !== undefined);
    if (events.length === 0) return changed;
    const applied = await applyAddressEvents(
      store,
      events,
      settings,
      now,
      (event, current) => current !== undefined && decideSweep(current, now, settings)?.action === event.action,
    );
    // Rows changed since they were read no longer match the candidates' query; none applied is left to the next sweep.
    if (applied.addresses === 0) return changed;
    changed += applied.addresses;
  }
}
