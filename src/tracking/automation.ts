import type { TrackingEventKind } from '../store/tables.ts';

// Does an event look automated? Flagged, never dropped: consolidation reports indicators with and
// without flagged events, and operators judge. Pure: every input is passed in.

export const automatedFlags = {
  /** HEAD request: link checkers and scanners probe with HEAD, people's browsers never do. */
  head: 1,
  /** User agent of a known security scanner, link pre-fetcher, bot or HTTP library (or none at all). */
  scannerAgent: 2,
  /** Click within automatedClickSeconds of the message being built: before a person could read it. */
  tooSoon: 4,
  /** Several clicks of one message within a couple of seconds: a scanner following every link. */
  burst: 8,
  /** Open through a mailbox privacy proxy (Apple Mail Privacy Protection, Google/Yahoo image proxies). */
  privacyProxy: 16,
} as const;

/** A scanner following every link of a message: this many clicks of one message within the window. */
export const clickBurst = { clicks: 3, windowMs: 2_000 } as const;

export function flagNames(flags: number): string[] {
  return Object.entries(automatedFlags)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
}

// Case-insensitive substrings. Scanner products identify themselves in their UA; pre-fetchers of
// chat apps and search engines too. Generic HTTP libraries are not mail clients.
const scannerAgents = [
  'barracuda',
  'mimecast',
  'proofpoint',
  'urldefense',
  'messagelabs',
  'symantec',
  'trend micro',
  'trendmicro',
  'zscaler',
  'forcepoint',
  'sophos',
  'fortinet',
  'fortiguard',
  'cisco',
  'ironport',
  'paloalto',
  'checkpoint',
  'safelinks',
  'bingpreview',
  'microsoft office',
  'ms-office',
  'skypeuripreview',
  'slackbot',
  'facebookexternalhit',
  'twitterbot',
  'linkedinbot',
  'whatsapp',
  'telegrambot',
  'discordbot',
  'googlebot',
  'bot/',
  'crawler',
  'spider',
  'headlesschrome',
  'phantomjs',
  'curl/',
  'wget/',
  'python-requests',
  'python-urllib',
  'go-http-client',
  'java/',
  'okhttp',
  'libwww-perl',
  'axios/',
  'node-fetch',
  'undici',
  'scrapy',
];

// Image proxies fetch the pixel on the reader's behalf (Gmail, Yahoo) or ahead of reading (Apple
// MPP, whose fetcher sends the bare "Mozilla/5.0"): an open happened or may have happened.
const proxyAgents = ['googleimageproxy', 'ggpht.com', 'yahoomailproxy', 'apple mail privacy'];

export interface EventFacts {
  kind: TrackingEventKind;
  method: string;
  userAgent: string | undefined;
  /** Seconds between the message being built (token issued) and now. */
  secondsSinceSent: number;
  /** Clicks of the same message seen in the last burst window, this one included. */
  recentClicks: number;
}

export interface FlagSettings {
  automatedClickSeconds: number;
  /** This many clicks of one message within the burst window flag them all from then on. */
  burstClicks: number;
}

// User agents repeat (a few browser builds, a few scanners): their verdicts are memoized, bounded,
// one map for opens (image proxies count there) and one for the other kinds.
const openVerdicts = new Map<string, number>();
const otherVerdicts = new Map<string, number>();
const maxAgentVerdicts = 2_000;

function agentFlags(userAgent: string | undefined, kind: TrackingEventKind): number {
  const verdicts = kind === 'open' ? openVerdicts : otherVerdicts;
  const key = userAgent ?? '';
  const known = verdicts.get(key);
  if (known !== undefined) return known;
  const agent = key.toLowerCase();
  let flags = 0;
  if (kind === 'open' && (agent === 'mozilla/5.0' || proxyAgents.some((p) => agent.includes(p))))
    flags = automatedFlags.privacyProxy;
  else if (agent === '' || scannerAgents.some((s) => agent.includes(s))) flags = automatedFlags.scannerAgent;
  if (verdicts.size >= maxAgentVerdicts) verdicts.clear();
  verdicts.set(key, flags);
  return flags;
}

export function automatedFlagsOf(facts: EventFacts, settings: FlagSettings): number {
  let flags = agentFlags(facts.userAgent, facts.kind);
  if (facts.method === 'HEAD') flags |= automatedFlags.head;
  if (facts.kind === 'open') return flags;
  if (facts.kind === 'click') {
    if (facts.secondsSinceSent < settings.automatedClickSeconds) flags |= automatedFlags.tooSoon;
    if (facts.recentClicks >= settings.burstClicks) flags |= automatedFlags.burst;
  }
  return flags;
}
