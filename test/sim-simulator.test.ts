import { promises as dns } from 'node:dns';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { pickSimulatedRecipient, simulatedRecipients } from '../src/sim/recipients.ts';
import { defaultScenario } from '../src/sim/scenario.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';

let sim: Simulator;
let resolver: dns.Resolver;
const clock = manualClock();

beforeAll(async () => {
  sim = await startSimulator({ clock, keepMessages: true, rateLimitPerMinute: 2 });
  resolver = new dns.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([sim.dnsServer]);
});

afterAll(async () => {
  await sim.close();
});

/** What an MTA does: MX lookup (or implicit MX), route lookup, one SMTP attempt per MX in order. */
async function deliver(address: string, timeoutMs = 2000): Promise<string> {
  const domain = address.split('@')[1]!;
  let exchanges: string[];
  try {
    const records = await resolver.resolveMx(domain);
    exchanges = records.sort((a, b) => a.priority - b.priority).map((record) => record.exchange);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENODATA') return `dns ${(error as { code?: string }).code}`;
    exchanges = [domain];
  }
  if (exchanges.length === 1 && exchanges[0] === '') return 'null mx';
  let outcome = '';
  for (const exchange of exchanges) {
    expect(await resolver.resolve4(exchange)).toEqual(['127.0.0.1']);
    const route = sim.routes.find((candidate) => candidate.match === exchange)!;
    outcome = await attempt(route.port, address, timeoutMs);
    if (!outcome.startsWith('ECONNREFUSED')) return outcome;
  }
  return outcome;
}

function attempt(port: number, to: string, timeoutMs: number): Promise<string> {
  const connection = new SMTPConnection({
    host: '127.0.0.1',
    port,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    tls: { rejectUnauthorized: false },
  });
  return new Promise((resolve) => {
    const done = (result: string) => {
      connection.close();
      resolve(result);
    };
    connection.once('error', (error: Error & { code?: string; response?: string }) =>
      done(error.message.includes('ECONNREFUSED') ? 'ECONNREFUSED' : (error.response ?? error.code ?? error.message)),
    );
    connection.connect(() => {
      connection.send(
        { from: 'bounces@herald.test', to: [to] },
        `To: ${to}\r\nSubject: hi\r\n\r\nhello\r\n`,
        (error, info) => {
          if (error)
            done((error as Error & { response?: string }).response ?? (error as Error & { code?: string }).code ?? '');
          else done(info.response.startsWith('250') && connection.secure ? 'accepted over tls' : info.response);
        },
      );
    });
  });
}

describe('default scenario end to end', () => {
  it('routes every MX host name and lists the domains with weights', () => {
    const matches = sim.routes.map((route) => route.match);
    expect(matches).toEqual(expect.arrayContaining(['mx.accept.test', 'gmail-smtp-in.l.google.test', 'mx.down.test']));
    expect(sim.domains.find((domain) => domain.name === 'accept.test')).toEqual({
      name: 'accept.test',
      weight: 57,
      behaviour: 'accept',
    });
    expect(sim.sinks.has('mx.down.test')).toBe(false);
    expect(sim.dnsServer).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('delivers, refuses and defers as scripted', async () => {
    expect(await deliver('alice@accept.test')).toBe('accepted over tls');
    expect(await deliver('bob@gmail.test')).toBe('accepted over tls');
    expect(await deliver('unknown7@unknown-users.test')).toMatch(/^550 5\.1\.1 /);
    expect(await deliver('known7@unknown-users.test')).toBe('accepted over tls');
    expect(await deliver('full3@full.test')).toMatch(/^452 4\.2\.2 /);
    expect(await deliver('a@nomx.test')).toBe('accepted over tls');
    expect(await deliver('a@backup.test')).toBe('accepted over tls');
    expect(await deliver('a@down.test')).toBe('ECONNREFUSED');
    expect(await deliver('a@nullmx.test')).toBe('null mx');
    expect(await deliver('a@nxdomain.test')).toBe('dns ENOTFOUND');
    expect(await deliver('a@busy.test')).toMatch(/^421 4\.3\.2 /);
    expect(await deliver('a@slow.test', 100)).toBe('ETIMEDOUT');
    expect(await deliver('a@stall-data.test', 100)).toBe('ETIMEDOUT');
    expect(await deliver('a@drop.test')).not.toMatch(/^250/);
    expect(sim.acceptedCount('alice@accept.test')).toBe(1);
    expect(sim.acceptedCount('nobody@accept.test')).toBe(0);
    const kept = sim.sinks.get('mx.accept.test')!.keptMessages;
    expect(kept[0]!.data.toString()).toContain('To: alice@accept.test');
  });

  it('greylists first attempts and rate-limits with the configured limit', async () => {
    expect(await deliver('g@greylist.test')).toMatch(/^451 4\.7\.1 /);
    expect(await deliver('g@greylist.test')).toBe('accepted over tls');
    expect(await deliver('r1@ratelimit.test')).toBe('accepted over tls');
    expect(await deliver('r2@ratelimit.test')).toBe('accepted over tls');
    expect(await deliver('r3@ratelimit.test')).toMatch(/^421 4\.7\.0 Too many messages/);
    clock.advance(60_000);
    expect(await deliver('r3@ratelimit.test')).toBe('accepted over tls');
  });

  it('reports per-host stats and totals', async () => {
    await Promise.all([...sim.sinks.values()].map((sink) => sink.whenIdle()));
    const stats = sim.stats();
    expect(stats.hosts['mx.ratelimit.test']!.rateLimited).toBe(1);
    expect(stats.hosts['mx.unknown-users.test']!.rcptRepliesByCode['550']).toBe(1);
    expect(stats.totals.messagesAccepted).toBe(
      Object.values(stats.hosts).reduce((sum, host) => sum + host.messagesAccepted, 0),
    );
    expect(stats.totals.openSessions).toBe(0);
    expect(stats.dns.queries).toBeGreaterThan(10);
    expect(stats.dns.nxdomain).toBe(1);
  });
});

describe('simulated recipients', () => {
  it('are deterministic, distinct and spread by weight with failing local parts', () => {
    const scenario = defaultScenario();
    expect(pickSimulatedRecipient(42, scenario)).toEqual(pickSimulatedRecipient(42, defaultScenario()));
    const recipients = simulatedRecipients(10_000, scenario);
    expect(new Set(recipients.map((recipient) => recipient.address)).size).toBe(10_000);
    const byDomain = new Map<string, number>();
    for (const recipient of recipients) byDomain.set(recipient.domain, (byDomain.get(recipient.domain) ?? 0) + 1);
    const total = scenario.domains.reduce((sum, domain) => sum + domain.weight, 0);
    for (const domain of scenario.domains) {
      expect(byDomain.get(domain.name) ?? 0, domain.name).toBeCloseTo((10_000 * domain.weight) / total, -2);
    }
    expect(byDomain.has('stall-data.test')).toBe(false);
    const unknown = recipients.filter((recipient) => recipient.domain === 'unknown-users.test');
    const prefixed = unknown.filter((recipient) => recipient.address.startsWith('unknown')).length;
    expect(prefixed / unknown.length).toBeGreaterThan(0.5);
    expect(prefixed / unknown.length).toBeLessThan(0.7);
  });
});
