import { compileMask, normalizeHost, type HostMask } from './mask.ts';
import { publicIdSelected } from './public-ids.ts';
import type { BackoffRule, MxRule } from './rule-pack.ts';

// The rules in force, compiled once (masks → RegExp, reply patterns → RegExp) and immutable.
// A reload builds a new CompiledRules and swaps it into the RulesHolder in one assignment;
// throttle counters are keyed by rule name + path, not by object identity, so they survive it.

export interface CompiledRule extends MxRule {
  /** Position in the layered list: the first matching rule wins. */
  index: number;
  compiledMasks: readonly HostMask[];
}

export interface CompiledBackoffRule extends BackoffRule {
  pattern: RegExp;
}

export interface CompiledRules {
  /** Hash of the files that produced these rules: shows in stats and logs which rules are in force. */
  readonly version: string;
  readonly files: readonly string[];
  readonly rules: readonly CompiledRule[];
  readonly backoff: readonly CompiledBackoffRule[];
  /** The first rule whose mask matches the MX host name and whose publicIds include `publicId`. */
  match(mxHost: string, publicId: number): CompiledRule;
  byName(name: string): CompiledRule | undefined;
}

/**
 * MX hosts whose rule is remembered. A list of 50,000 small company domains meets 50,000 MX hosts:
 * with 10,000 remembered and the memory emptied when full, nearly every decision of the send path
 * (several per message) tested every mask again, ~7 µs instead of ~0.3 µs. Past the limit the
 * oldest host is forgotten, one at a time.
 */
export const matchCacheLimit = 100_000;

export function compileRules(input: {
  version: string;
  files: readonly string[];
  rules: readonly MxRule[];
  backoff: readonly BackoffRule[];
  /** Test seam: how a mask is compiled (mask.ts). */
  compileHostMask?: (mask: string) => HostMask;
}): CompiledRules {
  const compileHostMask = input.compileHostMask ?? compileMask;
  const rules: CompiledRule[] = input.rules.map((rule, index) => ({
    ...rule,
    index,
    compiledMasks: rule.masks.map((mask) => compileHostMask(mask)),
  }));
  const last = rules[rules.length - 1];
  if (!last?.compiledMasks.some((m) => m.matchesEverything) || last.publicIds.length > 0) {
    throw new Error(
      'compileRules: the last rule must be the generic rule (mask "*", every public id); the loader guarantees it',
    );
  }
  const backoff = input.backoff.map((rule) => ({ ...rule, pattern: new RegExp(rule.reply, 'i') }));
  // Masks `*<letters>` are looked up by the host's ends (a site pack may hold 2,000 rules, one per
  // customer domain: testing every mask cost ~2.8 ms per MX host met for the first time, and a list
  // of 50,000 small domains meets 50,000); the other masks are tested in rule order.
  const bySuffix = new Map<string, number[]>();
  const tested: Array<{ rule: number; mask: HostMask }> = [];
  for (const rule of rules)
    for (const mask of rule.compiledMasks) {
      if (mask.suffix === undefined) tested.push({ rule: rule.index, mask });
      else {
        const indexes = bySuffix.get(mask.suffix) ?? [];
        indexes.push(rule.index);
        bySuffix.set(mask.suffix, indexes);
      }
    }
  const firstMatch = (host: string, publicId: number): CompiledRule => {
    let best = rules.length;
    for (let start = 0; start <= host.length; start++)
      for (const index of bySuffix.get(host.slice(start)) ?? [])
        if (index < best && publicIdSelected(rules[index]!.publicIds, publicId)) best = index;
    for (const { rule, mask } of tested) {
      if (rule >= best) break;
      if (publicIdSelected(rules[rule]!.publicIds, publicId) && mask.testNormalized(host)) best = rule;
    }
    return rules[best] ?? last;
  };
  const names = new Map(rules.map((rule) => [rule.name.toLowerCase(), rule]));
  // MX host names repeat endlessly during a delivery: remember each answer.
  const cache = new Map<string, CompiledRule>();
  return {
    version: input.version,
    files: [...input.files],
    rules,
    backoff,
    byName: (name) => names.get(name.toLowerCase()),
    match(mxHost, publicId) {
      const host = normalizeHost(mxHost);
      const key = `${publicId}|${host}`;
      const cached = cache.get(key);
      if (cached) return cached;
      const found = firstMatch(host, publicId);
      if (cache.size >= matchCacheLimit) cache.delete(cache.keys().next().value!);
      cache.set(key, found);
      return found;
    },
  };
}

/** Holds the rules in force. Readers call current() per decision; reload calls swap(). */
export class RulesHolder {
  #current: CompiledRules;
  #listeners = new Set<(next: CompiledRules, previous: CompiledRules) => void>();

  constructor(initial: CompiledRules) {
    this.#current = initial;
  }

  current(): CompiledRules {
    return this.#current;
  }

  swap(next: CompiledRules): CompiledRules {
    const previous = this.#current;
    this.#current = next;
    for (const listener of this.#listeners) listener(next, previous);
    return previous;
  }

  onSwap(listener: (next: CompiledRules, previous: CompiledRules) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
