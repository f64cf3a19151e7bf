import { WindowCounter } from '../shaping/sliding-window.ts';

// Mass rejection: a receiving domain that answers a hard "user unknown" to most of a large batch is
// not telling us about its users but about itself (a broken directory, an anti-spam layer refusing
// our IP with the wrong code). Quarantining on those replies burns the list in minutes: 2,000 of
// 2,000 addresses of one domain in a test run. Per recipient domain, over a sliding window, the
// guard counts the messages the domain answered and the hard failures among them; at `minMessages`
// answered and `hardRatio` hard, the domain trips: for `suspendMinutes` its hard replies are kept
// on the timeline only, and the caller releases what the window quarantined and suspends the domain.
// Pure: time is passed in.

export interface MassRejectionSettings {
  enabled: boolean;
  /** Messages the domain must have answered in the window before it can trip. */
  minMessages: number;
  /** Fraction of those answered with a hard failure that trips it. */
  hardRatio: number;
  windowMinutes: number;
  /** How long hard replies from a tripped domain are not applied to addresses (and it is suspended). */
  suspendMinutes: number;
}

export const DEFAULT_MASS_REJECTION: MassRejectionSettings = {
  enabled: true,
  minMessages: 50,
  hardRatio: 0.8,
  windowMinutes: 60,
  suspendMinutes: 180,
};

/** One answered message, as the guard counts it. */
export interface AnsweredMessage {
  domain: string;
  /** A hard verdict on a reply the receiving server gave (not a local DNS or connection failure). */
  hard: boolean;
  /** The reply, for a hard one: the trip keeps the last as its evidence. */
  reply?: string;
}

export interface MassRejectionTrip {
  domain: string;
  since: number;
  until: number;
  /** Start of the window the evidence covers: what it quarantined from then on is suspect. */
  windowStart: number;
  messages: number;
  hard: number;
  sampleReply: string;
}

interface DomainCounts {
  messages: WindowCounter;
  hard: WindowCounter;
  lastAt: number;
  lastHardReply: string;
}

export class MassRejectionGuard {
  readonly #settings: MassRejectionSettings;
  readonly #windowMs: number;
  readonly #domains = new Map<string, DomainCounts>();
  readonly #tripped = new Map<string, MassRejectionTrip>();
  #sweptAt = Number.NEGATIVE_INFINITY;

  constructor(settings: MassRejectionSettings) {
    this.#settings = settings;
    this.#windowMs = settings.windowMinutes * 60_000;
  }

  /** The trip in force for `domain`, if any. */
  trippedFor(domain: string, now: number): MassRejectionTrip | undefined {
    const trip = this.#tripped.get(domain.toLowerCase());
    if (!trip) return undefined;
    if (trip.until > now) return trip;
    this.#tripped.delete(trip.domain);
    return undefined;
  }

  /** Counts answered messages; returns the domains this batch trips. */
  record(messages: readonly AnsweredMessage[], now: number): MassRejectionTrip[] {
    if (!this.#settings.enabled) return [];
    const touched = new Set<string>();
    for (const message of messages) {
      const domain = message.domain.toLowerCase();
      if (this.trippedFor(domain, now)) continue;
      let counts = this.#domains.get(domain);
      if (!counts) {
        counts = {
          messages: new WindowCounter(this.#windowMs),
          hard: new WindowCounter(this.#windowMs),
          lastAt: now,
          lastHardReply: '',
        };
        this.#domains.set(domain, counts);
      }
      counts.lastAt = now;
      counts.messages.add(now);
      if (message.hard) {
        counts.hard.add(now);
        if (message.reply) counts.lastHardReply = message.reply.slice(0, 200);
        touched.add(domain);
      }
    }
    const trips: MassRejectionTrip[] = [];
    for (const domain of touched) {
      const counts = this.#domains.get(domain)!;
      const answered = counts.messages.total(now);
      const hard = counts.hard.total(now);
      if (answered < this.#settings.minMessages || hard / answered < this.#settings.hardRatio) continue;
      const trip: MassRejectionTrip = {
        domain,
        since: now,
        until: now + this.#settings.suspendMinutes * 60_000,
        windowStart: now - this.#windowMs,
        messages: answered,
        hard,
        sampleReply: counts.lastHardReply,
      };
      this.#tripped.set(domain, trip);
      this.#domains.delete(domain);
      trips.push(trip);
    }
    // Domains silent for a window are forgotten, once a minute: this runs per outcome batch, and a
    // scan of every domain each time was a pass over 100,000 entries per batch on a large list.
    if (now - this.#sweptAt >= 60_000) {
      this.#sweptAt = now;
      for (const [domain, counts] of this.#domains)
        if (now - counts.lastAt > this.#windowMs) this.#domains.delete(domain);
    }
    return trips;
  }
}
