import type { SmtpReply } from '../bounce/smtp-reply.ts';
import type { Verdict } from '../bounce/types.ts';
import type { Share } from './fair-share.ts';

// What the MTA needs from traffic shaping (the consumer owns the interface; src/shaping's Shaper
// fits it as is). Every call is per connection or per batch of messages, never per byte; the
// only per-message calls (recordReply) are in-memory counters.

/** A path as the throttle counts it: the MX host name the rule matches, its IP, the source's public id. */
export interface ThrottlePath {
  mxHost: string;
  mxIp: string;
  publicId: number;
}

/** Opaque to the MTA: handed back to renew/release. */
export type ThrottleLease = object;

export type LeaseDecision = { kind: 'granted'; lease: ThrottleLease } | { kind: 'wait'; retryInMs: number };

export interface PathThrottle {
  /** Before connecting; a granted lease must be released on every exit path of the session. */
  acquireConnection(path: ThrottlePath): Promise<LeaseDecision>;
  renewConnection(lease: ThrottleLease): Promise<boolean>;
  /** Idempotent. */
  releaseConnection(lease: ThrottleLease): Promise<void>;
  /** Up to `count` message permits in one step; `retryInMs` when fewer were granted. */
  acquireMessages(path: ThrottlePath, count: number): Promise<{ granted: number; retryInMs: number }>;
  recordConnection(path: ThrottlePath, outcome: 'accepted' | 'refused' | 'unreachable', reply?: SmtpReply): void;
  /** The final reply of one message (or the connection failure that ended it), with its
   *  qualification when it failed (the breaker decides "domain error" from the category), and the
   *  delivery's share of the path (`herald mx stats` shows how the path's budget is split). */
  recordReply(path: ThrottlePath, domain: string, reply: SmtpReply, verdict?: Verdict, share?: Share): void;
  /** Messages queued on the path waiting for a permit or a connection (for `herald mx stats`). */
  reportWaiting(path: ThrottlePath, count: number): void;
}

export interface PathThrottleSettings {
  throttle: PathThrottle;
  /** Renew a session's lease when it is older than this (the lease expires after about 3×). */
  renewAfterMs: number;
  /** Most permits asked for in one call. */
  permitBatch?: number;
}
