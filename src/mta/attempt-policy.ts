import { localFailure, type SmtpReply } from '../bounce/smtp-reply.ts';
import type { Verdict } from '../bounce/types.ts';
import type { ClaimedLog } from './mta-store.ts';
import type { FailedOutcome, Outcome, ReleasedOutcome } from './outcome.ts';
import {
  greylistDelaySeconds,
  isExpired,
  scheduledDelaySeconds,
  scheduleRetry,
  scheduleRetryAfter,
  type RetryDecision,
} from './retry-schedule.ts';

// What one attempt of one message comes to, decided from values (no clock, no I/O):
// - accepted → sent;
// - a hard verdict → failed at once;
// - a soft or ignored one (an auto-reply during the SMTP dialogue) → deferred to the next retry of
//   the schedule, or failed as expired when that retry would start after the delivery's validity;
// - held back by shaping (rate, breaker, affinity problem) → released without using an attempt,
//   not due again before its time, capped just past the validity so it expires then instead of
//   keeping the delivery open (a breaker suspends a domain for hours);
// - claimed after the validity ended → failed as expired without an attempt.

/** The message an attempt was made for: the claimed log and its delivery's validity. */
export interface Attempt {
  log: Pick<ClaimedLog, 'id' | 'deliveryId' | 'email' | 'attempts'>;
  /** Soft failures are retried until then; null = no limit. */
  validUntil: number | null;
  /** When the attempt ended (epoch ms). */
  at: number;
}

export interface AttemptPolicy {
  /** Seconds before the n-th retry; the last one repeats (config mta.retryDelaysSeconds). */
  retryDelaysSeconds: readonly number[];
  /** Retry of a greylisted message when its reply names no delay (config mta.greylistRetrySeconds); absent = the schedule's. */
  greylistRetrySeconds?: number;
}

/**
 * Greylisting (category `onhold`) is retried this many times after the short delay: a greylisting
 * server accepts the second attempt after its delay (often 5 min), while one that says it for ever
 * goes back to the normal schedule instead of being asked every few minutes until the validity ends.
 */
const greylistShortRetries = 3;

function base(attempt: Attempt, mxHost: string | null) {
  const { log, at } = attempt;
  return { logId: log.id, deliveryId: log.deliveryId, email: log.email, mxHost, at };
}

/** The remote server accepted the message. */
export function sentOutcome(attempt: Attempt, mxHost: string, reply: SmtpReply): Outcome {
  return { kind: 'sent', ...base(attempt, mxHost), reply };
}

/** A refused transaction, a connection or DNS failure, or our own content failing to render. */
export function failureOutcome(
  policy: AttemptPolicy,
  attempt: Attempt,
  mxHost: string | null,
  reply: SmtpReply,
  verdict: Verdict,
): Outcome {
  if (verdict.type === 'hard') return { kind: 'failed', ...base(attempt, mxHost), reply, verdict, expired: false };
  const decision = retryDecision(policy, attempt, reply, verdict);
  if (decision.kind === 'retry')
    return { kind: 'deferred', ...base(attempt, mxHost), retryAt: decision.retryAt, reply, verdict };
  return { kind: 'failed', ...base(attempt, mxHost), reply, verdict, expired: true };
}

/**
 * The schedule's retry; for a greylisted message, the delay the server asks for (or the configured
 * one) when shorter: a greylisted first attempt waited the schedule's first hour, every recipient of
 * a greylisting domain an hour late.
 */
function retryDecision(policy: AttemptPolicy, attempt: Attempt, reply: SmtpReply, verdict: Verdict): RetryDecision {
  const attempts = attempt.log.attempts + 1;
  const { retryDelaysSeconds, greylistRetrySeconds } = policy;
  if (verdict.category !== 'onhold' || greylistRetrySeconds === undefined || attempts > greylistShortRetries)
    return scheduleRetry(attempts, attempt.at, attempt.validUntil, retryDelaysSeconds);
  if (retryDelaysSeconds.length === 0) return { kind: 'expired' };
  const delay = Math.min(
    greylistDelaySeconds(reply.text, greylistRetrySeconds),
    scheduledDelaySeconds(attempts, retryDelaysSeconds),
  );
  return scheduleRetryAfter(delay, attempt.at, attempt.validUntil);
}

/** Back to pending without using an attempt: not tried (stop, lease running out, paused delivery). */
export function releasedOutcome(attempt: Attempt): ReleasedOutcome {
  return { kind: 'released', ...base(attempt, null) };
}

/** Held back until `retryAt` (rate, suspension, source problem), capped just past the validity. */
export function heldOutcome(attempt: Attempt, retryAt: number): ReleasedOutcome {
  const capped = attempt.validUntil === null ? retryAt : Math.min(retryAt, attempt.validUntil + 1);
  return { kind: 'released', ...base(attempt, null), retryAt: capped };
}

const expiredVerdict: Verdict = {
  type: 'soft',
  reason: 'expired',
  category: 'expired',
  ruleId: 'local.expired',
  packVersion: null,
};

/** Claimed after the validity ended: not sent, no attempt used; undefined while still valid. */
export function expiredBeforeAttempt(attempt: Attempt): FailedOutcome | undefined {
  if (!isExpired(attempt.at, attempt.validUntil)) return undefined;
  const reply = localFailure('expired', 'the delivery validity period ended before the message could be delivered');
  return { kind: 'failed', ...base(attempt, null), reply, verdict: expiredVerdict, expired: true };
}
