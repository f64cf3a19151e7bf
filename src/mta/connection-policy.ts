import type { SmtpTimeouts } from './smtp-client.ts';

// How many connections an MX host gets and how long each may live. Until MX rules exist this is
// one global cap; src/shaping/ can provide a rule-based policy with the same shape.

export interface ConnectionLimits {
  maxConnections: number;
  maxMessagesPerConnection: number;
  timeouts: SmtpTimeouts;
}

export interface ConnectionPolicy {
  limitsFor(mxHost: string): ConnectionLimits;
}

export function globalConnectionPolicy(limits: ConnectionLimits): ConnectionPolicy {
  return { limitsFor: () => limits };
}
