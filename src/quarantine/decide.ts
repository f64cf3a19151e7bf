import type { AddressEvent, AddressRecord, AddressState, QuarantineSettings, TimelineEntry } from './types.ts';

// Quarantine decisions, pure: (current row, event, now, settings) → next row + timeline entry.
// The store applies them in batches; nothing here reads a clock or a database.

const DAY_MS = 86_400_000;

export interface AddressDecision {
  record: AddressRecord;
  entry: TimelineEntry;
}

const utcDay = (at: number): number => Math.floor(at / DAY_MS);

export function emptyRecord(email: string, now: number): AddressRecord {
  return { email, state: 'valid', errorCount: 0, lastErrorAt: null, reason: null, updatedAt: now };
}

export function decideAddress(
  current: AddressRecord | undefined,
  event: AddressEvent,
  now: number,
  settings: QuarantineSettings,
): AddressDecision {
  const base = current ?? emptyRecord(event.email, now);
  const next: AddressRecord = { ...base, updatedAt: now };
  let counted = false;

  switch (event.source) {
    case 'operator':
    case 'schedule':
      applyAction(next, event);
      break;
    // RFC 5965 complaints and unsubscribe requests are the recipient's own wish: honoured even for
    // allowlisted addresses (allowlisting protects from error counting, not from opt-outs).
    case 'complaint':
      setState(next, 'denylisted', base.state === 'denylisted' ? (base.reason ?? 'complaint') : 'complaint');
      break;
    case 'unsubscribe':
      setState(next, 'denylisted', base.state === 'denylisted' ? (base.reason ?? 'unsubscribe') : 'unsubscribe');
      break;
    case 'smtp':
    case 'bounce': {
      const verdict = event.verdict;
      // Auto-replies, delivered reports and the like: on the timeline, no effect on the state.
      if (!verdict || verdict.type === 'ignored' || event.withheld) break;
      const at = event.at;
      if (verdict.type === 'hard') {
        next.lastErrorAt = Math.max(base.lastErrorAt ?? at, at);
        if (base.state !== 'allowlisted' && base.state !== 'denylisted') setState(next, 'quarantined', verdict.reason);
        break;
      }
      // Soft: counted at most once per UTC day; the counter restarts after `errorResetDays` without error.
      const reset = base.lastErrorAt !== null && at - base.lastErrorAt >= settings.errorResetDays * DAY_MS;
      const count = reset ? 0 : base.errorCount;
      counted = reset || base.lastErrorAt === null || base.errorCount === 0 || utcDay(at) !== utcDay(base.lastErrorAt);
      next.errorCount = counted ? count + 1 : count;
      next.lastErrorAt = Math.max(base.lastErrorAt ?? at, at);
      if (base.state === 'valid' || base.state === 'with_errors') {
        setState(
          next,
          next.errorCount >= settings.softErrorsToQuarantine ? 'quarantined' : 'with_errors',
          verdict.reason,
        );
      }
      break;
    }
  }

  const entry: TimelineEntry = {
    email: event.email,
    at: event.at,
    source: event.source,
    deliveryId: event.deliveryId ?? null,
    deliveryLogId: event.deliveryLogId ?? null,
    replyText: event.replyText ?? null,
    category: event.verdict?.category ?? null,
    reason: event.verdict?.reason ?? null,
    type: event.verdict?.type ?? null,
    ruleId: event.verdict?.ruleId ?? null,
    packVersion: event.verdict?.packVersion ?? null,
    stateBefore: base.state,
    stateAfter: next.state,
    errorCount: next.errorCount,
    counted,
    note: event.note ?? (event.action ? event.action : null),
  };
  return { record: next, entry };
}

function setState(record: AddressRecord, state: AddressState, reason: string | null): void {
  record.state = state;
  record.reason = reason;
}

function applyAction(next: AddressRecord, event: AddressEvent): void {
  switch (event.action) {
    case 'release':
    case 'reset':
      setState(next, 'valid', null);
      next.errorCount = 0;
      break;
    case 'allowlist':
      setState(next, 'allowlisted', 'operator');
      next.errorCount = 0;
      break;
    case 'denylist':
      setState(next, 'denylisted', 'operator');
      break;
    case 'quarantine':
      setState(next, 'quarantined', 'operator');
      break;
    default:
      break;
  }
}

/**
 * What the periodic sweep does to one address: a mailbox_full quarantine is released after
 * `mailboxFullReleaseDays`, a with_errors counter is reset after `errorResetDays` without error.
 */
export function decideSweep(
  record: AddressRecord,
  now: number,
  settings: QuarantineSettings,
): AddressEvent | undefined {
  if (record.lastErrorAt === null) return undefined;
  const quiet = now - record.lastErrorAt;
  if (
    record.state === 'quarantined' &&
    record.reason === 'mailbox_full' &&
    quiet >= settings.mailboxFullReleaseDays * DAY_MS
  ) {
    return {
      email: record.email,
      at: now,
      source: 'schedule',
      action: 'release',
      note: `mailbox_full released after ${settings.mailboxFullReleaseDays} days`,
    };
  }
  if (record.state === 'with_errors' && quiet >= settings.errorResetDays * DAY_MS) {
    return {
      email: record.email,
      at: now,
      source: 'schedule',
      action: 'reset',
      note: `no error for ${settings.errorResetDays} days: counter reset`,
    };
  }
  return undefined;
}

/**
 * Whether a bulk release (after an ISP outage) applies to an address: quarantined or with errors,
 * not by an operator's hand, its last error at or after `since`. Denylisted addresses never are.
 */
export function isReleasable(record: AddressRecord, since: number): boolean {
  return (
    (record.state === 'quarantined' || record.state === 'with_errors') &&
    record.reason !== 'operator' &&
    record.lastErrorAt !== null &&
    record.lastErrorAt >= since
  );
}

/** Folds a run of events (in time order) over one address; returns the last row and every entry. */
export function decideAll(
  current: AddressRecord | undefined,
  events: readonly AddressEvent[],
  now: number,
  settings: QuarantineSettings,
): { record: AddressRecord | undefined; entries: TimelineEntry[] } {
  let record = current;
  const entries: TimelineEntry[] = [];
  for (const event of events) {
    const decision = decideAddress(record, event, now, settings);
    record = decision.record;
    entries.push(decision.entry);
  }
  return { record, entries };
}
