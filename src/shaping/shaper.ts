import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import { BackoffTracker, defaultBackoffConfig, type BackoffConfig, type BackoffEvent } from './backoff.ts';
import { defaultBreakerConfig, DomainBreaker, type BreakerConfig, type DomainCheck } from './breaker.ts';
import type { CompiledRule, RulesHolder } from './compiled-rules.ts';
import { PathCounters, pathIdOf, type ConnectionOutcome, type PathRef } from './path-counters.ts';
import type { SmtpReply } from '../bounce/smtp-reply.ts';
import type { Verdict } from '../bounce/types.ts';
import { isDomainError, replyClass } from './reply.ts';
import { buildSnapshot, recentMs, type BindingLimit, type ShapingSnapshot } from './snapshot.ts';
import { hourMs, rateLimit, type ThrottleBackend } from './throttle.ts';
import type { Share } from '../mta/fair-share.ts';

// The one object the MTA talks to: rules + throttle backend + counters + breaker + backoff.
// It decides with the rules in force at each call (a reload swaps them underneath) and keys
// every counter by rule name + path, so a reload never loses them.

export interface ShaperDefaults {
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  /** What tls: default means: config mta.opportunisticTls. */
  opportunisticTls: boolean;
}

export interface ShaperOptions {
  rules: RulesHolder;
  backend: ThrottleBackend;
  clock: Clock;
  defaults: ShaperDefaults;
  /** The period of maxMessagesPerHour; only shortened by tests and simulations. */
  periodMs?: number;
  /** A connection lease not renewed or released within this time expires (crashed process). */
  leaseMs?: number;
  breaker?: BreakerConfig;
  backoff?: BackoffConfig;
  logger?: Logger;
  nodeId?: string;
}

/** What the MTA's ConnectionPolicy.limitsFor(mxHost) returns, plus the rule that decided it. */
export interface ConnectionLimits {
  rule: string;
  maxConnections: number;
  maxMessagesPerConnection: number;
  /** Same shape as the MTA's SmtpTimeouts. */
  timeouts: { connectTimeoutMs: number; commandTimeoutMs: number; dataTimeoutMs: number };
  tls: 'disabled' | 'opportunistic' | 'required';
}

export interface ConnectionLease {
  readonly key: string;
  readonly leaseId: string;
  readonly rule: string;
  readonly path: PathRef;
  readonly acquiredAt: number;
}

export type ConnectionDecision =
  | { kind: 'granted'; lease: ConnectionLease; open: number; max: number }
  | { kind: 'wait'; retryInMs: number; limit: 'maxConnections'; open: number; max: number };

export interface MessageDecision {
  granted: number;
  retryInMs: number;
  /** Set when fewer permits than asked were granted. */
  limit?: 'maxMessagesPerHour';
}

export const defaultLeaseMs = 5 * 60_000;

export class Shaper {
  readonly rules: RulesHolder;
  readonly backend: ThrottleBackend;
  readonly counters: PathCounters;
  readonly breaker: DomainBreaker;
  readonly backoff: BackoffTracker;
  readonly #options: ShaperOptions;
  readonly #periodMs: number;
  readonly #leaseMs: number;
  readonly #denied = new Map<string, { limit: BindingLimit; at: number }>();
  readonly #waiting = new Map<string, { count: number; at: number }>();
  readonly #released = new WeakSet<ConnectionLease>();

  constructor(options: ShaperOptions) {
    this.#options = options;
    this.rules = options.rules;
    this.backend = options.backend;
    this.#periodMs = options.periodMs ?? hourMs;
    this.#leaseMs = options.leaseMs ?? defaultLeaseMs;
    this.counters = new PathCounters(this.#periodMs);
    this.breaker = new DomainBreaker(options.breaker ?? { ...defaultBreakerConfig });
    this.backoff = new BackoffTracker(options.backoff ?? defaultBackoffConfig);
  }

  ruleFor(mxHost: string, publicId = 0): CompiledRule {
    return this.rules.current().match(mxHost, publicId);
  }

  /** Limits for a connection to `mxHost` from `publicId`, backoffs included. */
  limitsFor(mxHost: string, publicId = 0): ConnectionLimits {
    const rule = this.ruleFor(mxHost, publicId);
    const defaults = this.#options.defaults;
    return {
      rule: rule.name,
      maxConnections: this.#maxConnections(rule, publicId, mxHost),
      maxMessagesPerConnection: rule.maxMessagesPerConnection,
      timeouts: {
        connectTimeoutMs: rule.timeouts.connectMs ?? defaults.connectTimeoutMs,
        commandTimeoutMs: rule.timeouts.commandMs ?? defaults.commandTimeoutMs,
        dataTimeoutMs: rule.timeouts.dataMs ?? defaults.dataTimeoutMs,
      },
      tls: rule.tls === 'default' ? (defaults.opportunisticTls ? 'opportunistic' : 'disabled') : rule.tls,
    };
  }

  /** Adapter for the MTA pool's ConnectionPolicy (one per source public id). */
  connectionPolicy(publicId = 0): { limitsFor(mxHost: string): ConnectionLimits } {
    return { limitsFor: (mxHost) => this.limitsFor(mxHost, publicId) };
  }

  /**
   * The key an hourly quota and its backoffs are counted on: per rule (a provider's MX hosts share
   * one quota), per public id unless shared, and per MX host for rules scoped that way (the generic
   * rule: unrelated hosts must not share one quota).
   */
  rateKeyFor(rule: CompiledRule, publicId: number, mxHost: string): string {
    return `${rule.name}|${rule.shared ? 'shared' : `id${publicId}`}${rule.perMxHost ? `|${mxHost.toLowerCase()}` : ''}`;
  }

  connectionKeyFor(rule: CompiledRule, path: PathRef): string {
    return `${this.rateKeyFor(rule, path.publicId, path.mxHost)}|${path.mxIp}`;
  }

  /** Call before opening a session; release the lease when the session ends, whatever the way. */
  async acquireConnection(path: PathRef): Promise<ConnectionDecision> {
    const now = this.#options.clock.now();
    const rule = this.ruleFor(path.mxHost, path.publicId);
    const key = this.connectionKeyFor(rule, path);
    const max = this.#maxConnections(rule, path.publicId, path.mxHost);
    const grant = await this.backend.acquireConnection(key, max, this.#leaseMs, now);
    if (!grant.granted) {
      this.#denied.set(pathIdOf(rule.name, path), { limit: 'maxConnections', at: now });
      return { kind: 'wait', retryInMs: grant.retryInMs, limit: 'maxConnections', open: grant.open, max };
    }
    this.counters.connectionOpened(rule.name, path, now);
    return {
      kind: 'granted',
      lease: { key, leaseId: grant.leaseId, rule: rule.name, path: { ...path }, acquiredAt: now },
      open: grant.open,
      max,
    };
  }

  /** Keeps a long session's lease alive; call every leaseMs/2 or on each message. */
  async renewConnection(lease: ConnectionLease): Promise<boolean> {
    return this.backend.renewConnection(lease.key, lease.leaseId, this.#leaseMs, this.#options.clock.now());
  }

  /**
   * Idempotent: safe to call from every exit path of a session. Never rejects: its callers do not
   * wait for it (an unhandled rejection ended the MTA when a session closed while Redis was down),
   * and a lease the backend did not hear released expires by itself after `leaseMs`.
   */
  async releaseConnection(lease: ConnectionLease): Promise<void> {
    if (this.#released.has(lease)) return;
    this.#released.add(lease);
    this.counters.connectionClosed(lease.rule, lease.path, this.#options.clock.now());
    await this.backend.releaseConnection(lease.key, lease.leaseId).catch(() => undefined);
  }

  /** Takes up to `count` message permits for the path's rate key (one round trip). */
  async acquireMessages(path: PathRef, count = 1): Promise<MessageDecision> {
    const now = this.#options.clock.now();
    const rule = this.ruleFor(path.mxHost, path.publicId);
    const rateKey = this.rateKeyFor(rule, path.publicId, path.mxHost);
    const perPeriod = this.effectiveRate(rule, path.publicId, path.mxHost, now);
    const grant = await this.backend.acquireMessages(
      rateKey,
      rateLimit(perPeriod, this.#periodMs, rule.burst),
      count,
      now,
    );
    if (grant.granted >= count) return { granted: grant.granted, retryInMs: 0 };
    this.#denied.set(pathIdOf(rule.name, path), {
      limit: this.backoff.factors(rateKey, now).rate < 1 ? 'backoff' : 'maxMessagesPerHour',
      at: now,
    });
    return { granted: grant.granted, retryInMs: grant.retryInMs, limit: 'maxMessagesPerHour' };
  }

  /** maxMessagesPerHour after backoffs, for the path's rate key. */
  effectiveRate(rule: CompiledRule, publicId: number, mxHost: string, now = this.#options.clock.now()): number {
    return Math.max(
      1,
      rule.maxMessagesPerHour * this.backoff.factors(this.rateKeyFor(rule, publicId, mxHost), now).rate,
    );
  }

  /** Before sending to a domain: suspended domains stay pending until the breaker closes. */
  checkDomain(domain: string): DomainCheck {
    return this.breaker.check(domain, this.#options.clock.now());
  }

  /** Outcome of a connection attempt; a greeting/EHLO reply (421 too many connections) feeds backoff. */
  recordConnection(path: PathRef, outcome: ConnectionOutcome, reply?: SmtpReply): void {
    const now = this.#options.clock.now();
    const rule = this.ruleFor(path.mxHost, path.publicId);
    this.counters.recordConnection(rule.name, path, outcome, now);
    if (reply) this.#observeBackoff(rule, path, reply, now);
  }

  /** The final reply for one message on this path (2xx sent, 4xx deferred, 5xx failed), with the
   *  bounce qualification of a failed one (the breaker reads its category, see isDomainError) and
   *  the delivery's share (path-counters.ts counts each delivery's messages on the path). */
  recordReply(path: PathRef, domain: string, reply: SmtpReply, verdict?: Verdict, share?: Share): void {
    const now = this.#options.clock.now();
    const rule = this.ruleFor(path.mxHost, path.publicId);
    const kind = replyClass(reply);
    this.counters.recordMessage(rule.name, path, kind, now, share);
    const ok = !isDomainError(reply, verdict);
    const suspension = this.breaker.record(domain, ok, ok ? undefined : reply, now);
    if (suspension)
      this.#options.logger?.warn(
        { event: 'shaping.domain_suspended', ...suspension },
        `domain ${suspension.domain} suspended by the error-density breaker`,
      );
    if (kind !== '2xx') this.#observeBackoff(rule, path, reply, now);
  }

  /** How many messages are queued on this path waiting for a connection or a permit. */
  reportWaiting(path: PathRef, count: number): void {
    const rule = this.ruleFor(path.mxHost, path.publicId);
    this.#waiting.set(pathIdOf(rule.name, path), { count, at: this.#options.clock.now() });
  }

  /** Reverts expired backoffs (logging them); call from a timer at the edge, e.g. with the stats writer. */
  expireBackoffs(): BackoffEvent[] {
    const events = this.backoff.expire(this.#options.clock.now());
    for (const event of events) this.#logBackoff(event);
    return events;
  }

  /**
   * Never fails for the throttle backend: while Redis does not answer, the snapshot still carries
   * this node's own counters and says why the shared ones are missing. Without it no snapshot was
   * written during a Redis outage, and the node vanished from `herald mx stats` and the doctor.
   */
  async snapshot(): Promise<ShapingSnapshot> {
    const now = this.#options.clock.now();
    this.expireBackoffs();
    this.#forgetStale(now);
    let throttleError: string | undefined;
    const throttle = await this.backend.snapshot(now).catch((error: unknown) => {
      throttleError = `${this.backend.kind} throttle unreachable: ${(error as Error).message}`;
      return { connections: {}, rates: {} };
    });
    return buildSnapshot({
      nodeId: this.#options.nodeId ?? 'local',
      now,
      periodMs: this.#periodMs,
      rules: this.rules.current(),
      backendKind: this.backend.kind,
      throttle,
      throttleError,
      paths: this.counters.snapshot(now),
      backoffs: this.backoff.active(now),
      suspensions: this.breaker.active(now),
      denied: this.#denied,
      waiting: this.#waiting,
      rateKeyFor: (rule, publicId, mxHost) => this.rateKeyFor(rule, publicId, mxHost),
      effectiveRate: (rule, publicId, mxHost) => this.effectiveRate(rule, publicId, mxHost, now),
      maxConnections: (rule, publicId, mxHost) => this.#maxConnections(rule, publicId, mxHost, now),
    });
  }

  /**
   * Denials and waiting counts older than a snapshot shows (recentMs), and quiet backoff matches, are
   * forgotten at each snapshot: kept, they grew by one entry per MX host ever held back.
   */
  #forgetStale(now: number): void {
    for (const [id, denial] of this.#denied) if (now - denial.at > recentMs) this.#denied.delete(id);
    for (const [id, waiting] of this.#waiting) if (now - waiting.at > recentMs) this.#waiting.delete(id);
    this.backoff.forgetQuiet(now);
  }

  /** Paths with a recent denial or waiting count remembered (memory held; tests). */
  get pathsRemembered(): number {
    return new Set([...this.#denied.keys(), ...this.#waiting.keys()]).size;
  }

  #maxConnections(rule: CompiledRule, publicId: number, mxHost: string, now = this.#options.clock.now()): number {
    const factor = this.backoff.factors(this.rateKeyFor(rule, publicId, mxHost), now).connections;
    return Math.max(1, Math.floor(rule.maxConnections * factor));
  }

  #observeBackoff(rule: CompiledRule, path: PathRef, reply: SmtpReply, now: number): void {
    const events = this.backoff.observe(
      this.rateKeyFor(rule, path.publicId, path.mxHost),
      reply,
      this.rules.current().backoff,
      now,
    );
    for (const event of events) this.#logBackoff(event);
  }

  #logBackoff(event: BackoffEvent): void {
    const { backoff } = event;
    const message =
      event.kind === 'reverted'
        ? `backoff ${backoff.rule} on ${backoff.key} reverted`
        : `backoff ${backoff.rule} ${event.kind} on ${backoff.key}: ${backoff.limits.join('+')} x${backoff.factor} until ${new Date(backoff.until).toISOString()}`;
    this.#options.logger?.warn({ event: `shaping.backoff_${event.kind}`, backoff }, message);
  }
}
