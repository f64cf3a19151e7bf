// Bounded label values for /metrics (a label never carries an address, a domain or a delivery name):
// the provider class of an MX host or recipient domain (top providers + `other`), and the failure
// reason clamped to the vocabulary of DESIGN.md.

const providers: Array<[string, RegExp]> = [
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

/** The provider class of an MX host name or a recipient domain. */
export function domainClass(host: string | null | undefined): string {
  if (!host) return 'other';
  const name = host.toLowerCase().replace(/\.$/, '');
  for (const [provider, pattern] of providers) if (pattern.test(name)) return provider;
  return 'other';
}

export const failureReasons: readonly string[] = [
  'user_unknown',
  'invalid_domain',
  'unreachable',
  'account_disabled',
  'mailbox_full',
  'not_connected',
  'refused',
  'denylisted',
  'quarantined',
  'duplicate',
  'invalid_address',
  'expired',
  'ignored',
  'not_defined',
];

export function reasonLabel(reason: string | null | undefined): string {
  return reason && failureReasons.includes(reason) ? reason : 'other';
}
