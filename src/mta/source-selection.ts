import { createHash } from 'node:crypto';

// Which local address a message leaves from (affinities, src/shaping/affinity.ts implements the
// chooser). The MTA adds what only it knows: addresses that just failed to reach an MX host are
// skipped for that host for a while, so the pool's weights re-normalize over the others. The
// weighted draw is fixed by the recipient's address: a message's retries leave from the address
// its first attempt did, since greylisting is keyed on (client IP, sender, recipient) and a retry
// from another address of the pool is greylisted anew.

export interface SourceAddress {
  /** Local address to bind ('' = the system's choice). */
  address: string;
  /** EHLO name from that address ('' = mta.heloName). */
  heloName: string;
  publicId: number;
}

export type SourceChoice =
  | { kind: 'chosen'; source: SourceAddress }
  /** A configuration problem, not the recipient's: the message stays pending with `message`. */
  | { kind: 'unknown_affinity' | 'no_source'; message: string };

export interface SourceChooser {
  choose(
    request: { affinity: string | null | undefined; domain: string; unreachable?: ReadonlySet<string> },
    random: () => number,
  ): SourceChoice;
}

export interface SourceSelector {
  /** `recipient` fixes the weighted draw: the same recipient leaves from the same address while the pool is unchanged. */
  choose(affinity: string | null, domain: string, mxHost: string, now: number, recipient: string): SourceChoice;
  /** The address could not connect to the MX host: avoid it there for a while. */
  markUnreachable(address: string, mxHost: string, now: number): void;
}

/** A draw in [0, 1) that depends only on the recipient's address (case-insensitive). */
export function recipientDraw(recipient: string): number {
  return createHash('sha256').update(recipient.toLowerCase()).digest().readUInt32BE(0) / 2 ** 32;
}

export function createSourceSelector(
  chooser: SourceChooser,
  drawOf: (recipient: string) => number = recipientDraw,
  avoidMs = 5 * 60_000,
): SourceSelector {
  const avoided = new Map<string, Map<string, number>>();
  return {
    choose(affinity, domain, mxHost, now, recipient) {
      // Hashed only when the chooser draws (an affinity of one address does not).
      let draw: number | undefined;
      const random = () => (draw ??= drawOf(recipient));
      const byAddress = avoided.get(mxHost);
      if (!byAddress) return chooser.choose({ affinity, domain }, random);
      const unreachable = new Set<string>();
      for (const [address, until] of byAddress) {
        if (until > now) unreachable.add(address);
        else byAddress.delete(address);
      }
      if (byAddress.size === 0) avoided.delete(mxHost);
      const choice = chooser.choose({ affinity, domain, unreachable }, random);
      // Every address failed on this MX: try anyway (the MX may be down for everyone; the attempt is then a normal deferral).
      return choice.kind === 'no_source' && unreachable.size > 0
        ? chooser.choose({ affinity, domain }, random)
        : choice;
    },
    markUnreachable(address, mxHost, now) {
      if (!address) return;
      let byAddress = avoided.get(mxHost);
      if (!byAddress) avoided.set(mxHost, (byAddress = new Map()));
      byAddress.set(address, now + avoidMs);
    },
  };
}
