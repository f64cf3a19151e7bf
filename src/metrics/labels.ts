import { FAILURE_REASONS } from '../bounce/types.ts';

// Bounded label values for /metrics (a label never carries an address, a domain or a delivery name):
// the provider class of an MX host or recipient domain (top providers + `other`), and the failure
// reason clamped to the vocabulary of DESIGN.md.

const providers: ReadonlyArray<readonly [string, RegExp]> = [
  ['google', /(^|\.)(google\.com|googlemail\.com|gmail\.com)$/],
  ['microsoft', /(^|\.)(outlook\.com|hotmail\.[a-z.]+|live\.[a-z.]+|msn\.com)$/],
  ['yahoo', /(^|\.)(yahoodns\.net|yahoo\.[a-z.]+|ymail\.com|aol\.com|aol\.[a-z.]+)$/],
  ['apple', /(^|\.)(icloud\.com|me\.com|mac\.com|apple\.com)$/],
  ['orange', /(^|\.)(orange\.fr|wanadoo\.fr)$/],
  ['free', /(^|\.)free\.fr$/],
  ['sfr', /(^|\.)(sfr\.fr|neuf\.fr)$/],
  ['laposte', /(^|\.)laposte\.net$/],
  ['gmx', /(^|\.)(gmx\.[a-z.]+|web\.de|1and1\.[a-z.]+|ionos\.[a-z.]+)$/],
  ['yandex', /(^|\.)(yandex\.[a-z.]+|ya\.ru)$/],
  ['mailru', /(^|\.)mail\.ru$/],
  ['comcast', /(^|\.)comcast\.net$/],
];

export const domainClasses: readonly string[] = [...providers.map(([name]) => name), 'other'];

/**
 * A classifier over (class, pattern) pairs, each pattern matching the end of a lower-case name.
 * Nearly every name of a large list is `other`: one case-insensitive pass of all the patterns
 * together, on the name as given, rejects it, where a pass per pattern on a lower-cased copy cost a
 * dozen passes and two copies (/metrics classifies every recipient domain with due logs on each
 * read: 50,000 domains, bench/domain-classes.ts).
 */
export function providerClassifier(
  patterns: ReadonlyArray<readonly [string, RegExp]>,
): (host: string | null | undefined) => string {
  const ends = patterns.map(([provider, pattern]) => {
    if (!pattern.source.endsWith('$')) throw new Error(`pattern of provider ${provider} must end with $`);
    return `(?:${pattern.source.slice(0, -1)})`;
  });
  // A fully qualified name's trailing dot is allowed, as the lower-cased copy drops it below.
  const anyProvider = new RegExp(`(?:${ends.join('|')})\\.?$`, 'i');
  return (host) => {
    if (!host || !anyProvider.test(host)) return 'other';
    const name = host.toLowerCase().replace(/\.$/, '');
    for (const [provider, pattern] of patterns) if (pattern.test(name)) return provider;
    return 'other';
  };
}

/** The provider class of an MX host name or a recipient domain. */
export const domainClass = providerClassifier(providers);

export const failureReasons: readonly string[] = FAILURE_REASONS;

export function reasonLabel(reason: string | null | undefined): string {
  return reason && failureReasons.includes(reason) ? reason : 'other';
}
