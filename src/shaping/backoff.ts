import type { CompiledBackoffRule } from './compiled-rules.ts';
import type { SmtpReply } from '../bounce/smtp-reply.ts';
import { replyLine } from './reply.ts';

// Adaptive backoff: replies that say "slow down" (421 4.7.0, Gmail's 4.7.28, Microsoft's
// 4.7.650...) multiply a rate key's limits by the rule's factor for its duration. Each backoff
// keeps its evidence (matching replies, counts, times) for logs and `herald mx stats`, and is
// reverted by time alone: no operator action needed.

export interface BackoffConfig {
  enabled: boolean;
  /** Repeated backoffs compound down to this fraction of the configured limit, never below. */
  minFactor: number;
}

export const defaultBackoffConfig: BackoffConfig = { enabled: true, minFactor: 1 / 16 };

export interface ActiveBackoff {
  key: string;
  rule: string;
  factor: number;
  limits: Array<'rate' | 'connections'>;
  since: number;
  /** Last time the rule triggered (again): compounding waits a window after it. */
  triggeredAt: number;
  until: number;
  evidence: { matches: number; firstAt: number; lastAt: number; replies: string[] };
}

export type BackoffEvent =
  | { kind: 'applied' | 'compounded' | 'extended'; backoff: ActiveBackoff }
  | { kind: 'reverted'; backoff: ActiveBackoff };

export interface BackoffFactors {
  rate: number;
  connections: number;
}

const maxEvidenceReplies = 5;

export class BackoffTracker {
  readonly #config: BackoffConfig;
  /** Recent matching reply times per key|rule, until the threshold is reached (with the rule's window). */
  readonly #matches = new Map<string, { times: number[]; windowMs: number }>();
  /**
   * Active backoffs per rate key, then per rule name. Indexed by key because every connection and
   * message permit asks for its key's factors: with one backoff per small company's MX host (the
   * generic rule counts per MX host) a scan of them all per question cost seconds per snapshot of
   * 50,000 hosts, and a scan per permit on the send path.
   */
  readonly #active = new Map<string, Map<string, ActiveBackoff>>();
  /** No backoff ends before this: expire() (called on every deferral) scans nothing until then. */
  #nextEnd = Number.POSITIVE_INFINITY;

  constructor(config: BackoffConfig = defaultBackoffConfig) {
    this.#config = config;
  }

  /** Tests a reply on `key` (a rate key) against the rules; returns what changed, if anything. */
  observe(key: string, reply: SmtpReply, rules: readonly CompiledBackoffRule[], now: number): BackoffEvent[] {
    if (!this.#config.enabled || rules.length === 0) return [];
    const events: BackoffEvent[] = this.expire(now);
    const line = replyLine(reply);
    for (const rule of rules) {
      if (!rule.pattern.test(line)) continue;
      const id = `${key}|${rule.name}`;
      const times = (this.#matches.get(id)?.times ?? []).filter((t) => t > now - rule.windowMs);
      times.push(now);
      const current = this.#active.get(key)?.get(rule.name);
      if (current) {
        current.evidence.matches += 1;
        current.evidence.lastAt = now;
        addReply(current, line);
      }
      if (times.length < rule.threshold) {
        this.#matches.set(id, { times, windowMs: rule.windowMs });
        continue;
      }
      this.#matches.delete(id);
      if (!current) {
        const backoff: ActiveBackoff = {
          key,
          rule: rule.name,
          factor: Math.max(this.#config.minFactor, rule.factor),
          limits: [...rule.limits],
          since: now,
          triggeredAt: now,
          until: now + rule.durationMs,
          evidence: { matches: times.length, firstAt: times[0]!, lastAt: now, replies: [line.slice(0, 200)] },
        };
        const ofKey = this.#active.get(key) ?? new Map<string, ActiveBackoff>();
        ofKey.set(rule.name, backoff);
        this.#active.set(key, ofKey);
        this.#nextEnd = Math.min(this.#nextEnd, backoff.until);
        events.push({ kind: 'applied', backoff });
      } else if (now - current.triggeredAt >= rule.windowMs && current.factor > this.#config.minFactor) {
        // Still told to slow down a whole window after the last cut: cut again.
        current.factor = Math.max(this.#config.minFactor, current.factor * rule.factor);
        current.triggeredAt = now;
        current.until = now + rule.durationMs;
        events.push({ kind: 'compounded', backoff: current });
      } else {
        current.until = now + rule.durationMs;
        events.push({ kind: 'extended', backoff: current });
      }
    }
    return events;
  }

  /**
   * Forgets the matches below threshold whose window has passed: one reply matching a rule on each
   * of 50,000 small MX hosts was otherwise kept for the life of the process.
   */
  forgetQuiet(now: number): void {
    for (const [id, { times, windowMs }] of this.#matches)
      if (times[times.length - 1]! <= now - windowMs) this.#matches.delete(id);
  }

  /** Keys with matches below threshold still in their window (memory held; tests). */
  get counting(): number {
    return this.#matches.size;
  }

  /** Removes backoffs whose time is over and reports them as reverted. */
  expire(now: number): BackoffEvent[] {
    // A backoff's end only moves later (extended, compounded), so #nextEnd stays a lower bound.
    if (now < this.#nextEnd) return [];
    const events: BackoffEvent[] = [];
    let nextEnd = Number.POSITIVE_INFINITY;
    for (const [key, ofKey] of this.#active) {
      for (const [ruleName, backoff] of ofKey) {
        if (backoff.until <= now) {
          ofKey.delete(ruleName);
          events.push({ kind: 'reverted', backoff });
        } else nextEnd = Math.min(nextEnd, backoff.until);
      }
      if (ofKey.size === 0) this.#active.delete(key);
    }
    this.#nextEnd = nextEnd;
    return events;
  }

  /** Multipliers in force on `key`; several backoffs multiply, floored at minFactor. */
  factors(key: string, now: number): BackoffFactors {
    let rate = 1;
    let connections = 1;
    for (const backoff of this.#active.get(key)?.values() ?? []) {
      if (backoff.until <= now) continue;
      if (backoff.limits.includes('rate')) rate *= backoff.factor;
      if (backoff.limits.includes('connections')) connections *= backoff.factor;
    }
    return { rate: Math.max(rate, this.#config.minFactor), connections: Math.max(connections, this.#config.minFactor) };
  }

  active(now: number): ActiveBackoff[] {
    const active: ActiveBackoff[] = [];
    for (const ofKey of this.#active.values())
      for (const backoff of ofKey.values()) if (backoff.until > now) active.push(backoff);
    return active;
  }
}

function addReply(backoff: ActiveBackoff, line: string): void {
  const short = line.slice(0, 200);
  if (backoff.evidence.replies.includes(short)) return;
  backoff.evidence.replies = [...backoff.evidence.replies, short].slice(-maxEvidenceReplies);
}
