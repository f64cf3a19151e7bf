import type { SmtpReply } from '../bounce/smtp-reply.ts';
import { replyLine } from './reply.ts';
import { WindowCounter } from './sliding-window.ts';

// Error-density breaker per recipient domain: when a domain has seen at least `minMessages`
// messages in the window and at least `errorRatio` of them failed (4xx, 5xx or no answer), it is
// suspended for `suspendMs`. Sending more into a wall of errors only burns the IP's reputation
// and fills queues; the messages stay pending and resume when the suspension ends.

export interface BreakerConfig {
  enabled: boolean;
  minMessages: number;
  errorRatio: number;
  windowMs: number;
  suspendMs: number;
}

export const defaultBreakerConfig: BreakerConfig = {
  enabled: true,
  minMessages: 300,
  errorRatio: 0.9,
  windowMs: 3_600_000,
  suspendMs: 3 * 3_600_000,
};

export interface Suspension {
  domain: string;
  since: number;
  until: number;
  evidence: { messages: number; errors: number; errorRatio: number; sampleReplies: string[] };
}

export type DomainCheck = { kind: 'open' } | { kind: 'suspended'; suspension: Suspension; message: string };

interface DomainEntry {
  messages: WindowCounter;
  errors: WindowCounter;
  samples: string[];
  lastAt: number;
}

const maxSamples = 5;

export class DomainBreaker {
  readonly #config: BreakerConfig;
  readonly #domains = new Map<string, DomainEntry>();
  readonly #suspended = new Map<string, Suspension>();

  constructor(config: BreakerConfig = defaultBreakerConfig) {
    this.#config = config;
  }

  /** Records one message outcome; returns the new suspension when this one trips the breaker. */
  record(domain: string, ok: boolean, reply: SmtpReply | undefined, now: number): Suspension | undefined {
    if (!this.#config.enabled) return undefined;
    const key = domain.toLowerCase();
    if (this.check(key, now).kind === 'suspended') return undefined;
    let entry = this.#domains.get(key);
    if (!entry) {
      entry = {
        messages: new WindowCounter(this.#config.windowMs),
        errors: new WindowCounter(this.#config.windowMs),
        samples: [],
        lastAt: now,
      };
      this.#domains.set(key, entry);
    }
    entry.lastAt = now;
    entry.messages.add(now);
    if (!ok) {
      entry.errors.add(now);
      if (reply) {
        const line = replyLine(reply).slice(0, 200);
        if (!entry.samples.includes(line)) entry.samples = [line, ...entry.samples].slice(0, maxSamples);
      }
    }
    const messages = entry.messages.total(now);
    const errors = entry.errors.total(now);
    if (messages < this.#config.minMessages || errors / messages < this.#config.errorRatio) return undefined;
    const suspension: Suspension = {
      domain: key,
      since: now,
      until: now + this.#config.suspendMs,
      evidence: {
        messages,
        errors,
        errorRatio: Math.round((errors / messages) * 1000) / 1000,
        sampleReplies: [...entry.samples],
      },
    };
    this.#suspended.set(key, suspension);
    this.#domains.delete(key);
    return suspension;
  }

  check(domain: string, now: number): DomainCheck {
    const key = domain.toLowerCase();
    const suspension = this.#suspended.get(key);
    if (!suspension) return { kind: 'open' };
    if (suspension.until <= now) {
      this.#suspended.delete(key);
      return { kind: 'open' };
    }
    const percent = Math.round(suspension.evidence.errorRatio * 100);
    return {
      kind: 'suspended',
      suspension,
      message: `domain ${key} suspended until ${new Date(suspension.until).toISOString()}: ${suspension.evidence.errors} errors in ${suspension.evidence.messages} messages (${percent}%)`,
    };
  }

  /** Suspensions in force (expired ones are dropped), and idle domains forgotten. */
  active(now: number): Suspension[] {
    for (const [key, entry] of this.#domains) if (now - entry.lastAt > this.#config.windowMs) this.#domains.delete(key);
    for (const [key, suspension] of this.#suspended) if (suspension.until <= now) this.#suspended.delete(key);
    return [...this.#suspended.values()];
  }

  /** Suspends a domain on another's evidence (the quarantine's mass-rejection guard); a longer suspension in force stays. */
  suspend(suspension: Suspension): void {
    const key = suspension.domain.toLowerCase();
    const current = this.#suspended.get(key);
    if (current && current.until >= suspension.until) return;
    this.#suspended.set(key, { ...suspension, domain: key });
    this.#domains.delete(key);
  }

  /** Lifts a suspension early (operator action). */
  lift(domain: string): boolean {
    return this.#suspended.delete(domain.toLowerCase());
  }
}
