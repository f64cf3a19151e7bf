import type { Verdict } from '../bounce/types.ts';
import type { AddressState } from '../store/tables.ts';

// Vocabulary of the quarantine: the state of one address, the events that move it, and the
// timeline entry each event leaves (which delivery, which reply, which rule and pack version).

export type { AddressState };

/** The current row of one address (table `addresses`); absent means `valid` with no errors. */
export interface AddressRecord {
  email: string;
  state: AddressState;
  /** Soft errors counted so far (at most one per UTC day). */
  errorCount: number;
  /** Last error of any kind (counted or not): drives the once-a-day rule and the reset. */
  lastErrorAt: number | null;
  /** Why the address is in its state: a failure reason (`user_unknown`, `mailbox_full`, …), `complaint`, `unsubscribe`, `operator`. */
  reason: string | null;
  updatedAt: number;
}

/** Where an event came from. `schedule` is the periodic sweep (resets, mailbox_full releases). */
export type AddressEventSource = 'smtp' | 'bounce' | 'complaint' | 'unsubscribe' | 'operator' | 'schedule';

export type OperatorAction = 'release' | 'allowlist' | 'denylist' | 'quarantine';

/** The qualification of the reply that caused the event (absent for operator actions and unsubscribes). */
export type EventVerdict = Verdict;

export interface AddressEvent {
  /** Lower-case address. */
  email: string;
  at: number;
  source: AddressEventSource;
  deliveryId?: number | null;
  deliveryLogId?: number | null;
  /** The reply or diagnostic text, as received (length-limited by the store). */
  replyText?: string | null;
  verdict?: EventVerdict;
  /** Only for source `operator` (and `schedule`, which releases or resets). */
  action?: OperatorAction | 'reset';
  /** Free text for the timeline: who/why (operator), what the sweep did. */
  note?: string;
  /** On the timeline only, the state untouched: the reply was judged to be about its domain, not
   *  the address (mass-rejection.ts). */
  withheld?: boolean;
}

/** One line of an address's timeline (table `address_events`). */
export interface TimelineEntry {
  email: string;
  at: number;
  source: AddressEventSource;
  deliveryId: number | null;
  deliveryLogId: number | null;
  replyText: string | null;
  category: string | null;
  reason: string | null;
  type: string | null;
  ruleId: string | null;
  packVersion: string | null;
  stateBefore: AddressState;
  stateAfter: AddressState;
  errorCount: number;
  /** Whether this event counted as a soft error (false for the second error of a day). */
  counted: boolean;
  note: string | null;
}

export interface QuarantineSettings {
  /** Counted soft errors that quarantine an address. */
  softErrorsToQuarantine: number;
  /** The soft error counter goes back to 0 after this many days without any error. */
  errorResetDays: number;
  /** An address quarantined for mailbox_full is released after this many days. */
  mailboxFullReleaseDays: number;
}

export const DEFAULT_QUARANTINE_SETTINGS: QuarantineSettings = {
  softErrorsToQuarantine: 5,
  errorResetDays: 10,
  mailboxFullReleaseDays: 30,
};
