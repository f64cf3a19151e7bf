import type { SmtpReply } from '../bounce/smtp-reply.ts';
import type { Verdict } from '../bounce/types.ts';

// What happened to one delivery log on one attempt. Outcomes are values; the outcome writer turns
// them into row updates in batched transactions, and the consumers of a committed batch (the
// quarantine, metrics) find in them all they need: no outcome is re-read from the database.

interface OutcomeBase {
  logId: number;
  deliveryId: number;
  /** The recipient's address, as the delivery log holds it. */
  email: string;
  /** The MX host the attempt went to (null when it never got that far, e.g. DNS failure). */
  mxHost: string | null;
  /** When the attempt ended (epoch ms). */
  at: number;
}

export interface SentOutcome extends OutcomeBase {
  kind: 'sent';
  reply: SmtpReply;
}

/** A soft (or ignored) failure: back to pending until `retryAt`. */
export interface DeferredOutcome extends OutcomeBase {
  kind: 'deferred';
  retryAt: number;
  reply: SmtpReply;
  /** The qualification of `reply`, with the rule id and pack version that decided it. */
  verdict: Verdict;
}

/** Final failure: a hard verdict, or a soft one past the delivery's validity. */
export interface FailedOutcome extends OutcomeBase {
  kind: 'failed';
  reply: SmtpReply;
  /** The qualification of `reply`: what the address is judged on. */
  verdict: Verdict;
  /** The delivery's validity ended: the log records reason `expired` instead of the verdict's. */
  expired: boolean;
}

/** Not attempted (graceful stop, claim lease running out): back to pending, attempts unchanged. */
export interface ReleasedOutcome extends OutcomeBase {
  kind: 'released';
  /** Held back (rate, breaker, affinity problem): not due again before this time; absent = due at once. */
  retryAt?: number;
}

export type Outcome = SentOutcome | DeferredOutcome | FailedOutcome | ReleasedOutcome;
