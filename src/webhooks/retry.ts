// When a failed webhook batch is tried again: doubling delays from `firstSeconds`, capped. Pure.

export function webhookRetryAt(now: number, attempts: number, firstSeconds: number, maxSeconds: number): number {
  const seconds = Math.min(maxSeconds, firstSeconds * 2 ** Math.min(Math.max(attempts, 0), 30));
  return now + seconds * 1000;
}
