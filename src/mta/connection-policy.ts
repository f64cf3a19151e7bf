import type { SmtpTimeouts } from './smtp-client.ts';

// How many connections an MX host gets and how long each may live. Without shaping this is one
// global cap; src/shaping's Shaper provides the rule-based policy (MX rules) with the same shape.

export interface ConnectionLimits {
  maxConnections: number;
  maxMessagesPerConnection: number;
  timeouts: SmtpTimeouts;
  /** STARTTLS policy; absent = the pool's opportunisticTls setting. */
  tls?: 'disabled' | 'opportunistic' | 'required';
  /** The MX rule that decided (shaping), for logs. */
  rule?: string;
}

export interface ConnectionPolicy {
  /** `publicId`: the source address's public id (MX rules may differ per source IP). */
  limitsFor(mxHost: string, publicId: number): ConnectionLimits;
}

export function globalConnectionPolicy(limits: ConnectionLimits): ConnectionPolicy {
  return { limitsFor: () => limits };
}
