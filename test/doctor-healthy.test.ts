import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Finding } from '../src/doctor/finding.ts';
import { openHerald } from '../src/main.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { simulatedRecipients } from '../src/sim/recipients.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { describeEachDialect } from './support/databases.ts';
import { drainMta } from './support/drain-mta.ts';

// No false alarms: a delivery in the middle of sending to the simulator's everyday Internet — a few
// dead, silent, busy and dropping hosts, greylisting, full mailboxes — gives nothing above info.
// (The hard-bounce domains are left out: their share is the existing bounce check's business.)

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ starttls: false });
});
afterAll(async () => {
  await simulator.close();
});

const now = Date.UTC(2026, 5, 1, 12);

describeEachDialect('herald doctor on a healthy run', ({ store, url }) => {
  it('finds nothing above info while a delivery sends through everyday network noise', async () => {
    const clock = manualClock(now);
    const hard = new Set(['unknown-users.test', 'nxdomain.test', 'nullmx.test', 'stall-data.test']);
    const recipients = simulatedRecipients(600)
      .filter((r) => !hard.has(r.domain))
      .map((r) => ({ email: r.address, data: { first_name: 'Pat' } }));
    const { deliveryId } = await seedDelivery(store().db, { now, recipients, validUntil: now + 86_400_000 });
    const configInput = {
      database: { url: url() },
      mta: {
        heloName: 'mta.herald.test',
        routes: simulator.routes,
        resolverServers: [simulator.dnsServer],
        // Long enough that a loaded test machine does not turn healthy hosts into timeouts.
        connectTimeoutMs: 2_000,
        commandTimeoutMs: 2_000,
        dataTimeoutMs: 2_000,
        retryDelaysSeconds: [3600],
        pollIntervalMs: 20,
      },
    };
    const config = parseConfig(configInput, 'test');
    const mta = createMta({ store: createMtaStore(store()), nodeId: 'healthy', config: config.mta, clock });
    await drainMta(mta);
    clock.advance(60_000);
    const logs = await store()
      .db.selectFrom('delivery_logs')
      .select(['status'])
      .where('delivery_id', '=', deliveryId)
      .execute();
    // Mid-delivery: most sent, the noisy ones pending their retry.
    expect(logs.filter((l) => l.status === 'pending').length).toBeGreaterThan(0);
    expect(logs.filter((l) => l.status === 'sent').length).toBeGreaterThan(logs.length / 2);

    const stdout: string[] = [];
    const context: CliContext = {
      output: { out: (line) => stdout.push(line), err: (line) => stdout.push(line) },
      open: () => openHerald({ config: parseConfig(configInput, 'test'), logger: silentLogger, clock }),
    };
    const exitCode = await runCli(['node', 'herald', 'doctor', '--json'], context);
    const findings = (JSON.parse(stdout.find((l) => l.startsWith('{'))!) as { findings: Finding[] }).findings;
    // The configuration check judges this test's herald.yaml (no tracking URL, no DKIM key, a test
    // EHLO name): real warnings about the setup, not about the run.
    const aboutTheRun = findings.filter((f) => f.check !== 'configuration');
    expect(aboutTheRun.filter((f) => f.severity !== 'info').map((f) => `${f.check}: ${f.symptom}`)).toEqual([]);
    expect(findings.filter((f) => f.severity === 'critical')).toEqual([]);
    expect(exitCode).toBe(0);
  });
});
