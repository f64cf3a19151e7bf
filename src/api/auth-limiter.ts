// Failed authentications per client address in a fixed window: past the limit, requests from that
// address get 429 until the window ends, so tokens cannot be guessed at network speed. Pure
// arithmetic over the time passed in; one instance per API process (memory bounded by `maxClients`).
//
// Two counts per address. A wrong credential (a token, a session cookie, a sign-in with a token)
// blocks every request of the address. A request carrying none (a state-changing call without a
// token, a dashboard post without a session, a forged sign-in form) is counted apart and blocks
// only requests carrying none: any web page the operator opens can send those to 127.0.0.1
// (a cross-site form post needs no permission), and when they counted with the others twenty of them
// locked every loopback client, valid tokens included, out of the API for the window.
//
// An address is counted by its client key (common/client-address.ts): an IPv6 client by its /64,
// else each of its 2^64 addresses had its own 20 failures.

import { clientKey, defaultIpv6PrefixLength } from '../common/client-address.ts';

/** What a request presented: some credential (right or wrong), or none at all. */
export type Presented = 'credential' | 'nothing';

export interface AuthLimiter {
  /** Milliseconds until a request of `client` presenting `presented` may be tried again, or 0. */
  blockedFor(client: string, now: number, presented: Presented): number;
  recordFailure(client: string, now: number, presented: Presented): void;
}

interface FixedWindows {
  blockedFor(client: string, now: number): number;
  recordFailure(client: string, now: number): void;
}

function createFixedWindows(options: { failuresPerWindow: number; windowMs: number; maxClients: number }) {
  const windows = new Map<string, { start: number; failures: number }>();
  const live = (client: string, now: number) => {
    const entry = windows.get(client);
    if (entry && now - entry.start >= options.windowMs) {
      windows.delete(client);
      return undefined;
    }
    return entry;
  };
  const fixed: FixedWindows = {
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
      if (windows.size >= options.maxClients) {
        // Drop expired windows first; if every one is live, the oldest goes (Map keeps insertion order).
        for (const [key, value] of windows) if (now - value.start >= options.windowMs) windows.delete(key);
        if (windows.size >= options.maxClients) windows.delete(windows.keys().next().value!);
      }
      windows.set(client, { start: now, failures: 1 });
    },
  };
  return fixed;
}

export function createAuthLimiter(options: {
  failuresPerWindow: number;
  windowMs: number;
  maxClients?: number;
  /** IPv6 clients are counted by this prefix of their address (api.ipv6ClientPrefixLength). */
  ipv6PrefixLength?: number;
}): AuthLimiter {
  const settings = { ...options, maxClients: options.maxClients ?? 10_000 };
  const wrongCredentials = createFixedWindows(settings);
  const withoutCredentials = createFixedWindows(settings);
  const keyOf = (client: string) => clientKey(client, options.ipv6PrefixLength ?? defaultIpv6PrefixLength);
  return {
    blockedFor(client, now, presented) {
      const key = keyOf(client);
      const wrong = wrongCredentials.blockedFor(key, now);
      return presented === 'credential' ? wrong : Math.max(wrong, withoutCredentials.blockedFor(key, now));
    },
    recordFailure(client, now, presented) {
      (presented === 'credential' ? wrongCredentials : withoutCredentials).recordFailure(keyOf(client), now);
    },
  };
}
