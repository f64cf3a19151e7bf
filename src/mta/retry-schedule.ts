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
  const index = Math.min(Math.max(attempts, 1), delaysSeconds.length) - 1;
  const retryAt = now + (delaysSeconds[index] ?? 0) * 1_000;
  if (validUntil !== null && retryAt > validUntil) return { kind: 'expired' };
  return { kind: 'retry', retryAt };
}

/** A message claimed after its delivery's validity ended is not sent at all. */
export function isExpired(now: number, validUntil: number | null): boolean {
  return validUntil !== null && now > validUntil;
}
