import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';

type ManualClock = ReturnType<typeof manualClock>;
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Finding } from '../src/doctor/finding.ts';
import { openHerald } from '../src/main.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import type { Scenario } from '../src/sim/scenario.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { describeEachDialect } from './support/databases.ts';
import { drainMta } from './support/drain-mta.ts';

// The doctor on faults injected the way they arrive in reality: SMTP replies and refused or silent
// hosts from the ISP simulator, broken DNS from the simulator's resolver, then `herald doctor
// --json` on the database the real MTA wrote. Each fault has its own domain; 12 recipients each (the
// doctor ignores causes seen on fewer than 10 messages).

const blocklistReply = {
  code: 554,
  enhanced: '5.7.1',
  text: 'Service unavailable; Client host [192.0.2.44] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.44',
};
const throttleReply = { code: 451, enhanced: '4.7.0', text: 'Too many messages from your IP, slow down' };

const scenario: Scenario = {
  domains: [
    { name: 'fine.test', weight: 1, behaviour: 'accept', mx: [{ exchange: 'mx.fine.test', priority: 10 }] },
    { name: 'blocked.test', weight: 1, behaviour: 'blocklist', mx: [{ exchange: 'mx.blocked.test', priority: 10 }] },
    { name: 'throttled.test', weight: 1, behaviour: 'throttle', mx: [{ exchange: 'mx.throttled.test', priority: 10 }] },
    { name: 'closed.test', weight: 1, behaviour: 'refuse', mx: [{ exchange: 'mx.closed.test', priority: 10 }] },
    { name: 'silent.test', weight: 1, behaviour: 'stall', mx: [{ exchange: 'mx.silent.test', priority: 10 }] },
    { name: 'brokendns.test', weight: 1, behaviour: 'servfail', servfail: true },
    { name: 'nxdomain.test', weight: 1, behaviour: 'nxdomain' },
  ],
  hosts: [
    { name: 'mx.fine.test', kind: 'sink', behaviour: {} },
    {
      name: 'mx.blocked.test',
      kind: 'sink',
      behaviour: { rcptRules: [{ localPartPrefix: '', reply: blocklistReply }] },
    },
    {
      name: 'mx.throttled.test',
      kind: 'sink',
      behaviour: { rcptRules: [{ localPartPrefix: '', reply: throttleReply }] },
    },
    { name: 'mx.closed.test', kind: 'refuse' },
    { name: 'mx.silent.test', kind: 'sink', behaviour: { stall: 'before-greeting' } },
  ],
};

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ scenario, starttls: false });
});
afterAll(async () => {
  await simulator.close();
});

const now = Date.UTC(2026, 5, 1, 12);

function configInput(url: string): Record<string, unknown> {
  return {
    database: { url },
    mta: {
      heloName: 'mta.herald.test',
      bounceDomain: 'bounces.brand.test',
      // DNS carries no ports: the simulator's MX hosts are reached through static routes, the domains
      // themselves are resolved by its DNS server (which is what the doctor names as the resolver).
      routes: simulator.routes.filter((route) => route.match.startsWith('mx.')),
      resolverServers: [simulator.dnsServer],
      // mx.silent.test never greets: a timeout only has to be longer than a healthy host's answer on a
      // loaded machine. 300 ms turned mx.blocked.test's 5.7.1 refusals into timeouts at a load of 17 on
      // 2 cores (no reputation finding).
      connectTimeoutMs: 2_000,
      commandTimeoutMs: 2_000,
      dataTimeoutMs: 2_000,
      retryDelaysSeconds: [3600],
      pollIntervalMs: 20,
    },
  };
}

async function doctor(
  url: string,
  clock: ManualClock,
  args: string[] = [],
): Promise<{ exitCode: number; out: { findings: Finding[] }; stdout: string[] }> {
  const stdout: string[] = [];
  const context: CliContext = {
    output: { out: (line) => stdout.push(line), err: (line) => stdout.push(line) },
    open: () => openHerald({ config: parseConfig(configInput(url), 'test'), logger: silentLogger, clock }),
  };
  const exitCode = await runCli(['node', 'herald', ...args], context);
  const json = stdout.find((line) => line.startsWith('{'));
  return { exitCode, out: json ? JSON.parse(json) : { findings: [] }, stdout };
}

function finding(findings: Finding[]): string {
  return findings[0]!.logs!;
}

describeEachDialect('herald doctor on faults from the ISP simulator', ({ store, url }) => {
  it('names the reputation block, the unreachable MX hosts and the DNS failures, not the throttling', async () => {
    const clock = manualClock(now);
    const recipients = ['fine', 'blocked', 'throttled', 'closed', 'silent', 'brokendns', 'nxdomain'].flatMap((domain) =>
      Array.from({ length: 12 }, (_, i) => ({ email: `r${i}@${domain}.test`, data: { first_name: 'Pat' } })),
    );
    const { deliveryId } = await seedDelivery(store().db, { now, recipients, validUntil: now + 86_400_000 });
    const config = parseConfig(configInput(url()), 'test');
    const mta = createMta({ store: createMtaStore(store()), nodeId: 'doctor-faults', config: config.mta, clock });
    await drainMta(mta);
    clock.advance(60_000);

    const run = await doctor(url(), clock, ['doctor', '--json', '--delivery', String(deliveryId)]);
    const findings = run.out.findings;
    const byCheck = (check: string) => findings.filter((f) => f.check === check);

    expect(byCheck('reputation')).toEqual([
      expect.objectContaining({
        severity: 'critical',
        impact: 12,
        evidence: expect.objectContaining({
          failed: 12,
          listedIps: ['192.0.2.44'],
          byDestination: [expect.objectContaining({ destination: 'mx.blocked.test', count: 12 })],
        }),
        logs: `herald delivery logs ${deliveryId} --mx mx.blocked.test --enhanced 5.7.1`,
      }),
    ]);
    const unreachable = byCheck('unreachable');
    expect(unreachable.map((f) => [f.evidence.mxHost, f.evidence.byKind])).toEqual(
      expect.arrayContaining([
        ['mx.closed.test', { refused: 12 }],
        ['mx.silent.test', { timeout: 12 }],
      ]),
    );
    expect(unreachable).toHaveLength(2);
    const dns = byCheck('dns');
    expect(dns.map((f) => [f.severity, f.evidence.domain, f.evidence.byKind])).toEqual(
      expect.arrayContaining([
        ['warning', 'brokendns.test', { servfail: 12 }],
        ['info', 'nxdomain.test', { nxdomain: 12 }],
      ]),
    );
    expect(dns.find((f) => f.evidence.domain === 'brokendns.test')!.evidence.resolver).toEqual([simulator.dnsServer]);
    // The throttled host is a "slow down", left to backoffs: no finding names it.
    expect(JSON.stringify(findings)).not.toContain('throttled.test');
    // Each finding links to the logs that show it: the command lists exactly those.
    for (const finding of [...byCheck('reputation'), ...unreachable, ...dns]) {
      const listed = await doctor(url(), clock, [...finding.logs!.split(' ').slice(1), '--json']);
      const lines = listed.stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
      expect(lines).toHaveLength(12);
    }
    const text = await doctor(url(), clock, finding(byCheck('reputation')).split(' ').slice(1));
    expect(text.stdout.at(-1)).toBe('12 log(s)');
    expect(text.stdout[0]).toContain('554 5.7.1 Service unavailable');
    // --delivery orders by impact: every finding here is about 12 messages, the reputation block
    // (critical) first among equals.
    expect(findings[0]!.check).toBe('reputation');
    expect(findings.map((f) => f.impact)).toEqual([...findings.map((f) => f.impact)].sort((a, b) => b! - a!));
  });
});
