// When to try a soft-failed message again. Pure: time and the schedule are passed in.

export type RetryDecision = { kind: 'retry'; retryAt: number } | { kind: 'expired' };

/**
 * `attempts` counts the attempts made so far, including the one that just failed. The n-th retry
 * waits delaysSeconds[n-1]; the last delay repeats. A retry that would start after the delivery's
 * validity ends is not scheduled: the message is expired now (RFC 5321 §4.5.4.1 give-up time).
 */
export function scheduleRetry(
  attempts: number,
  now: number,
  validUntil: number | null,
  delaysSeconds: readonly number[],
): RetryDecision {
  if (delaysSeconds.length === 0) return { kind: 'expired' };
  return scheduleRetryAfter(scheduledDelaySeconds(attempts, delaysSeconds), now, validUntil);
}

/** The schedule's delay before the retry after `attempts` attempts (the last delay repeats). */
export function scheduledDelaySeconds(attempts: number, delaysSeconds: readonly number[]): number {
  const index = Math.min(Math.max(attempts, 1), delaysSeconds.length) - 1;
  return delaysSeconds[index] ?? 0;
}

/** A retry `delaySeconds` from now, unless it would start after the validity. */
export function scheduleRetryAfter(delaySeconds: number, now: number, validUntil: number | null): RetryDecision {
  const retryAt = now + delaySeconds * 1_000;
  if (validUntil !== null && retryAt > validUntil) return { kind: 'expired' };
  return { kind: 'retry', retryAt };
}

/** Bounds on the delay a greylisting reply asks for: a tight loop below, the schedule's hour above. */
const greylistHintMinSeconds = 60;
const greylistHintMaxSeconds = 3_600;
const delayHint = /\b(\d{1,5})\s*(seconds?|secs?|s|minutes?|mins?)\b/i;

/**
 * How long a greylisting server asks to wait, from its text ("try again in 300 seconds",
 * "retry in 5 minutes"), within 60 s – 1 h; `fallbackSeconds` when it says nothing.
 */
export function greylistDelaySeconds(replyText: string, fallbackSeconds: number): number {
  const match = delayHint.exec(replyText);
  if (!match) return fallbackSeconds;
  const seconds = Number(match[1]) * (/^m/i.test(match[2] ?? '') ? 60 : 1);
  return Math.min(Math.max(seconds, greylistHintMinSeconds), greylistHintMaxSeconds);
}

/** A message claimed after its delivery's validity ended is not sent at all. */
export function isExpired(now: number, validUntil: number | null): boolean {
  return validUntil !== null && now > validUntil;
}
