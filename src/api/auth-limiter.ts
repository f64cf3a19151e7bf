// Failed authentications per client address in a fixed window: past the limit, every request from
// that address gets 429 until the window ends, so tokens cannot be guessed at network speed. Pure
// arithmetic over the time passed in; one instance per API process (memory bounded by `maxClients`).

export interface AuthLimiter {
  /** Milliseconds until `client` may try again, or 0 when it is not blocked. */
  blockedFor(client: string, now: number): number;
  recordFailure(client: string, now: number): void;
}

export function createAuthLimiter(options: {
  failuresPerWindow: number;
  windowMs: number;
  maxClients?: number;
}): AuthLimiter {
  const maxClients = options.maxClients ?? 10_000;
  const windows = new Map<string, { start: number; failures: number }>();
  const live = (client: string, now: number) => {
    const entry = windows.get(client);
    if (entry && now - entry.start >= options.windowMs) {
      windows.delete(client);
      return undefined;
    }
    return entry;
  };
  return {
    blockedFor(client, now) {
      const entry = live(client, now);
      if (!entry || entry.failures < options.failuresPerWindow) return 0;
      return entry.start + options.windowMs - now;
    },
    recordFailure(client, now) {
      const entry = live(client, now);
      if (entry) {
        entry.failures += 1;
        return;
      }
      if (windows.size >= maxClients) {
        // Drop expired windows first; if every one is live, the oldest goes (Map keeps insertion order).
        for (const [key, value] of windows) if (now - value.start >= options.windowMs) windows.delete(key);
        if (windows.size >= maxClients) windows.delete(windows.keys().next().value!);
      }
      windows.set(client, { start: now, failures: 1 });
    },
  };
}
