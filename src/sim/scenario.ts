// The simulated Internet as data: which `.test` domains exist, which MX hosts they point to and how
// each host behaves. The demo, integration tests and benchmarks all start from `defaultScenario()`.
import type { DnsRecords } from './dns-server.ts';
import type { SinkBehaviour, SmtpReply } from './sink-behaviour.ts';

export type ScenarioHost =
  | { name: string; kind: 'sink'; behaviour: SinkBehaviour }
  /** Nothing listens on the host's port: connections are refused. */
  | { name: string; kind: 'refuse' };

export interface ScenarioDomain {
  name: string;
  /** Relative share of generated recipients (see pickSimulatedRecipient). */
  weight: number;
  /** A short label for reports and docs: what this domain does to mail. */
  behaviour: string;
  mx?: Array<{ exchange: string; priority: number }>;
  /** RFC 7505 null MX: the domain publishes that it accepts no mail. */
  nullMx?: boolean;
  /** Its DNS is broken: every query for the domain gets SERVFAIL. */
  servfail?: boolean;
  /** No MX but an A record on the domain itself (RFC 5321 §5.1 implicit MX); needs a host of the same name. */
  implicitMx?: boolean;
  /** Share (0..1) of this domain's generated recipients whose local part starts with `prefix`. */
  localParts?: { prefix: string; share: number };
}

export interface Scenario {
  domains: ScenarioDomain[];
  hosts: ScenarioHost[];
}

export interface DefaultScenarioOptions {
  /** Transactions per minute ratelimit.test accepts before 421 4.7.0. Default 600. */
  rateLimitPerMinute?: number;
  /** How long greylist.test defers a (sender, recipient) pair. Default 0: the next attempt passes. */
  greylistDelayMs?: number;
}

// Reply texts are the ones large providers actually send, so the classifier sees realistic input.
const userUnknown: SmtpReply = {
  code: 550,
  enhanced: '5.1.1',
  text: "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos",
};
const mailboxFull: SmtpReply = {
  code: 452,
  enhanced: '4.2.2',
  text: 'The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.test/mail/?p=OverQuotaTemp',
};
const busyGreeting: SmtpReply = {
  code: 421,
  enhanced: '4.3.2',
  text: 'Service not available, closing transmission channel',
  close: true,
};

function mx(exchange: string, priority = 10): Array<{ exchange: string; priority: number }> {
  return [{ exchange, priority }];
}

export function defaultScenario(options: DefaultScenarioOptions = {}): Scenario {
  return {
    domains: [
      { name: 'accept.test', weight: 57, behaviour: 'accept', mx: mx('mx.accept.test') },
      { name: 'gmail.test', weight: 10, behaviour: 'accept', mx: mx('gmail-smtp-in.l.google.test', 5) },
      { name: 'yahoo.test', weight: 5, behaviour: 'accept', mx: mx('mta5.am0.yahoodns.test', 1) },
      {
        name: 'unknown-users.test',
        weight: 5,
        behaviour: 'user-unknown',
        mx: mx('mx.unknown-users.test'),
        localParts: { prefix: 'unknown', share: 0.6 },
      },
      {
        name: 'full.test',
        weight: 4,
        behaviour: 'mailbox-full',
        mx: mx('mx.full.test'),
        localParts: { prefix: 'full', share: 0.6 },
      },
      { name: 'ratelimit.test', weight: 5, behaviour: 'rate-limit', mx: mx('mx.ratelimit.test') },
      { name: 'greylist.test', weight: 4, behaviour: 'greylist', mx: mx('mx.greylist.test') },
      {
        name: 'backup.test',
        weight: 2,
        behaviour: 'primary-mx-down',
        mx: [
          { exchange: 'mx1.backup.test', priority: 10 },
          { exchange: 'mx2.backup.test', priority: 20 },
        ],
      },
      { name: 'nomx.test', weight: 1, behaviour: 'implicit-mx', implicitMx: true },
      { name: 'down.test', weight: 2, behaviour: 'connection-refused', mx: mx('mx.down.test') },
      { name: 'slow.test', weight: 1, behaviour: 'stall-before-greeting', mx: mx('mx.slow.test') },
      { name: 'busy.test', weight: 1, behaviour: 'greeting-421', mx: mx('mx.busy.test') },
      { name: 'drop.test', weight: 1, behaviour: 'drop-during-data', mx: mx('mx.drop.test') },
      // Weight 0: a host that swallows the message and never answers risks duplicates (RFC 1047),
      // which fault tests want and a demo does not.
      { name: 'stall-data.test', weight: 0, behaviour: 'stall-after-data', mx: mx('mx.stall-data.test') },
      { name: 'nullmx.test', weight: 1, behaviour: 'null-mx', nullMx: true },
      { name: 'nxdomain.test', weight: 1, behaviour: 'nxdomain' },
    ],
    hosts: [
      { name: 'mx.accept.test', kind: 'sink', behaviour: {} },
      { name: 'gmail-smtp-in.l.google.test', kind: 'sink', behaviour: {} },
      { name: 'mta5.am0.yahoodns.test', kind: 'sink', behaviour: {} },
      {
        name: 'mx.unknown-users.test',
        kind: 'sink',
        behaviour: { rcptRules: [{ localPartPrefix: 'unknown', reply: userUnknown }] },
      },
      {
        name: 'mx.full.test',
        kind: 'sink',
        behaviour: { rcptRules: [{ localPartPrefix: 'full', reply: mailboxFull }] },
      },
      { name: 'mx.ratelimit.test', kind: 'sink', behaviour: { rateLimitPerMinute: options.rateLimitPerMinute ?? 600 } },
      { name: 'mx.greylist.test', kind: 'sink', behaviour: { greylist: { delayMs: options.greylistDelayMs ?? 0 } } },
      { name: 'mx1.backup.test', kind: 'refuse' },
      { name: 'mx2.backup.test', kind: 'sink', behaviour: {} },
      { name: 'nomx.test', kind: 'sink', behaviour: {} },
      { name: 'mx.down.test', kind: 'refuse' },
      { name: 'mx.slow.test', kind: 'sink', behaviour: { stall: 'before-greeting' } },
      { name: 'mx.busy.test', kind: 'sink', behaviour: { greeting: busyGreeting } },
      { name: 'mx.drop.test', kind: 'sink', behaviour: { dropDuringData: true } },
      { name: 'mx.stall-data.test', kind: 'sink', behaviour: { stall: 'after-data' } },
    ],
  };
}

/** The DNS zone of a scenario: every host name resolves to `address`, domains carry their MX. */
export function scenarioDnsRecords(scenario: Scenario, address = '127.0.0.1'): Record<string, DnsRecords> {
  const records: Record<string, DnsRecords> = {};
  const entry = (name: string): DnsRecords => (records[name.toLowerCase()] ??= {});
  for (const host of scenario.hosts) entry(host.name).a = [address];
  for (const domain of scenario.domains) {
    if (domain.servfail) entry(domain.name).servfail = true;
    else if (domain.nullMx) entry(domain.name).mx = [{ exchange: '.', priority: 0 }];
    else if (domain.mx) entry(domain.name).mx = domain.mx;
    else if (domain.implicitMx) entry(domain.name).a = [address];
  }
  return records;
}
