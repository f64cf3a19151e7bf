import type { SmtpReply, Verdict } from './smtp-reply.ts';

// What happened to one delivery log on one attempt. Outcomes are values; the outcome writer turns
// them into row updates in batched transactions.

interface OutcomeBase {
  logId: number;
  /** The MX host the attempt went to (null when it never got that far, e.g. DNS failure). */
  mxHost: string | null;
  /** When the attempt ended (epoch ms). */
  at: number;
}

export interface SentOutcome extends OutcomeBase {
  kind: 'sent';
  reply: SmtpReply;
}

/** A soft failure: back to pending until `retryAt`. */
export interface DeferredOutcome extends OutcomeBase {
  kind: 'deferred';
  retryAt: number;
  reply: SmtpReply;
  verdict: Verdict;
}

/** Final failure: a hard (or ignored) verdict, or a soft one past the delivery's validity (reason `expired`). */
export interface FailedOutcome extends OutcomeBase {
  kind: 'failed';
  reply: SmtpReply;
  verdict: Verdict;
}

/** Not attempted (graceful stop, claim lease running out): back to pending, attempts unchanged. */
export interface ReleasedOutcome extends OutcomeBase {
  kind: 'released';
  /** Held back (rate, breaker, affinity problem): not due again before this time; absent = due at once. */
  retryAt?: number;
}

export type Outcome = SentOutcome | DeferredOutcome | FailedOutcome | ReleasedOutcome;
