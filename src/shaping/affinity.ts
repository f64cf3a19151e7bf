import { compileMask, type HostMask } from './mask.ts';

// Affinities: named pools of local source addresses. A delivery names its affinity; each message
// picks an address by weight (5/5/1 → 45/45/10 %), skipping addresses that cannot reach the MX
// and re-normalizing the remaining weights. Pure: the random source is a parameter.

export interface AffinityAddress {
  /** Local IP address to bind the socket to. */
  address: string;
  /** EHLO name announced from this address (must match its reverse DNS for most providers). */
  heloName: string;
  /** The public id of the address as ISPs see it: the key of throttle counters. */
  publicId: number;
  weight: number;
  /** Recipient domains (or masks like `*.fr`) this address is limited to; empty = all. */
  includeDomains?: string[];
  /** Recipient domains (or masks) this address must never send to. */
  excludeDomains?: string[];
}

export interface AffinityConfig {
  name: string;
  addresses: AffinityAddress[];
}

interface CompiledAddress extends AffinityAddress {
  include: HostMask[];
  exclude: HostMask[];
}

export interface AffinityTable {
  names(): string[];
  choose(request: SourceRequest, random: () => number): SourceChoice;
}

export interface SourceRequest {
  /** The affinity named by the delivery; null/undefined = the default affinity. */
  affinity: string | null | undefined;
  /** Recipient domain, for include/exclude. */
  domain: string;
  /** Addresses known to be unable to reach this MX right now (connect failures): skipped. */
  unreachable?: ReadonlySet<string>;
}

export type SourceChoice =
  | {
      kind: 'chosen';
      source: AffinityAddress;
      affinity: string /** Share of the pool after re-normalization. */;
      share: number;
    }
  /** The MTA leaves the message pending with `message` (a configuration problem, not the recipient's). */
  | { kind: 'unknown_affinity'; affinity: string; message: string }
  | { kind: 'no_source'; affinity: string; message: string };

export const defaultAffinityName = 'default';

export function compileAffinities(affinities: readonly AffinityConfig[]): AffinityTable {
  const table = new Map<string, CompiledAddress[]>();
  for (const affinity of affinities) {
    table.set(
      affinity.name,
      affinity.addresses.map((address) => ({
        ...address,
        include: (address.includeDomains ?? []).map(compileMask),
        exclude: (address.excludeDomains ?? []).map(compileMask),
      })),
    );
  }
  return {
    names: () => [...table.keys()],
    choose(request, random) {
      const name = request.affinity ?? defaultAffinityName;
      const pool = table.get(name);
      if (!pool) {
        // No affinities configured at all: the default affinity is the host's own address.
        if (name === defaultAffinityName && table.size === 0)
          return { kind: 'chosen', source: systemSource, affinity: name, share: 1 };
        const known = [...table.keys()].join(', ') || 'none configured';
        return {
          kind: 'unknown_affinity',
          affinity: name,
          message: `unknown affinity "${name}" (known: ${known}); add it under shaping.affinities or change the delivery's affinity`,
        };
      }
      const candidates = pool.filter(
        (a) => a.weight > 0 && !request.unreachable?.has(a.address) && allowsDomain(a, request.domain),
      );
      if (candidates.length === 0) {
        return {
          kind: 'no_source',
          affinity: name,
          message: `no address of affinity "${name}" may send to ${request.domain} now (excluded by include/exclude domains or unable to reach its MX)`,
        };
      }
      const total = candidates.reduce((sum, a) => sum + a.weight, 0);
      let point = random() * total;
      let picked = candidates[candidates.length - 1]!;
      for (const candidate of candidates) {
        if (point < candidate.weight) {
          picked = candidate;
          break;
        }
        point -= candidate.weight;
      }
      const { include: _include, exclude: _exclude, ...source } = picked;
      return { kind: 'chosen', source, affinity: name, share: picked.weight / total };
    },
  };
}

/** Used when no affinity is configured: bind nothing, public id 0. */
export const systemSource: AffinityAddress = { address: '', heloName: '', publicId: 0, weight: 1 };

function allowsDomain(address: CompiledAddress, domain: string): boolean {
  if (address.exclude.some((mask) => mask.test(domain))) return false;
  return address.include.length === 0 || address.include.some((mask) => mask.test(domain));
}
