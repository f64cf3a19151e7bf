// Deterministic recipients spread over a scenario's domains by weight, with local parts that make
// the scripted failures happen (unknown*@unknown-users.test, full*@full.test).
import { defaultScenario, type Scenario, type ScenarioDomain } from './scenario.ts';

export interface SimulatedRecipient {
  address: string;
  domain: string;
  /** The domain's behaviour label, e.g. 'user-unknown'. */
  behaviour: string;
}

const goldenRatio = (Math.sqrt(5) - 1) / 2;
const cumulativeCache = new WeakMap<Scenario, { domains: ScenarioDomain[]; ends: number[]; total: number }>();

/**
 * The recipient number `index` (0, 1, 2, ...). The same index always gives the same address, every
 * index gives a different address, and any run of consecutive indices covers the domains in
 * proportion to their weights (a golden-ratio sequence, not random draws).
 */
export function pickSimulatedRecipient(index: number, scenario: Scenario = sharedDefault()): SimulatedRecipient {
  const { domains, ends, total } = cumulative(scenario);
  if (total <= 0) throw new RangeError('the scenario has no domain with a positive weight');
  const position = ((index * goldenRatio) % 1) * total;
  let chosen = domains.length - 1;
  for (let i = 0; i < ends.length; i += 1) {
    if (position < ends[i]!) {
      chosen = i;
      break;
    }
  }
  const domain = domains[chosen]!;
  const localParts = domain.localParts;
  const special = localParts !== undefined && mix(index) / 0x1_0000_0000 < localParts.share;
  const localPart = `${special ? localParts.prefix : 'user'}${index}`;
  return { address: `${localPart}@${domain.name}`, domain: domain.name, behaviour: domain.behaviour };
}

export function simulatedRecipients(
  count: number,
  scenario: Scenario = sharedDefault(),
  first = 0,
): SimulatedRecipient[] {
  return Array.from({ length: count }, (_, offset) => pickSimulatedRecipient(first + offset, scenario));
}

let defaultInstance: Scenario | undefined;
function sharedDefault(): Scenario {
  defaultInstance ??= defaultScenario();
  return defaultInstance;
}

function cumulative(scenario: Scenario): { domains: ScenarioDomain[]; ends: number[]; total: number } {
  let cached = cumulativeCache.get(scenario);
  if (!cached) {
    const domains = scenario.domains.filter((domain) => domain.weight > 0);
    let total = 0;
    const ends = domains.map((domain) => (total += domain.weight));
    cached = { domains, ends, total };
    cumulativeCache.set(scenario, cached);
  }
  return cached;
}

/** A 32-bit integer hash (murmur3 finaliser) so the prefixed share does not follow the domain pattern. */
function mix(value: number): number {
  let h = value >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
