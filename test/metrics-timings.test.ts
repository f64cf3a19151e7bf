import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../src/common/logger.ts';
import { composeMta } from '../src/compose-mta.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { startMetricsServer, type MetricsServer } from '../src/metrics/server.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { createTrackingService } from '../src/tracking/service.ts';
import { insertTrackingEvents } from '../src/tracking/tracking-store.ts';
import { describeEachDialect } from './support/databases.ts';
import { waitFor } from './support/wait.ts';

// The timings of /metrics measured on the real paths, on both dialects: SMTP sessions and
// transactions of the MTA against the simulator, DKIM signing, tracking events recorded by the
// tracking server (which also answers /healthz and /readyz on its own port), and the consolidation
// lag of the oldest raw event.

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator();
});
afterAll(async () => {
  await simulator.close();
});

/** The value of one sample line of the Prometheus text, 0 when absent. */
function sample(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? 0 : Number(found.slice(line.length + 1));
}

describeEachDialect('metrics of the MTA, tracking and consolidation', (context) => {
  let herald: Herald;
  let server: MetricsServer;
  beforeAll(async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = join(mkdtempSync(join(tmpdir(), 'herald-dkim-')), 'key.pem');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    herald = await openHerald({
      config: parseConfig(
        {
          database: { url: context.url() },
          tracking: { baseUrl: 'https://t.brand.test', port: 0 },
          metrics: { cacheSeconds: 0 },
          mta: {
            routes: simulator.routes,
            resolverServers: [simulator.dnsServer],
            pollIntervalMs: 50,
            bounceDomain: 'bounces.brand.test',
            dkim: [{ domain: 'brand.test', selector: 's1', privateKeyFile: keyFile }],
          },
        },
        'test',
      ),
      logger: silentLogger,
    });
    server = await startMetricsServer(herald, 0);
  });
  afterAll(async () => {
    await server?.close();
    await herald?.close();
  });

  it('times SMTP sessions, transactions and DKIM signing by provider class', async () => {
    const recipients = [
      { email: `a.${context.dialect}@accept.test`, data: { first_name: 'A' } },
      { email: `b.${context.dialect}@gmail.test`, data: { first_name: 'B' } },
      { email: `unknown.${context.dialect}@unknown-users.test`, data: { first_name: 'C' } },
    ];
    const { deliveryId } = await seedDelivery(herald.store.db, { now: Date.now(), recipients });
    const mta = await composeMta(herald);
    await mta.start();
    try {
      await waitFor(async () => {
        const rows = await herald.store.db
          .selectFrom('delivery_logs')
          .select('id')
          .where('delivery_id', '=', deliveryId)
          .where('status', 'in', ['sent', 'failed'])
          .execute();
        return rows.length === recipients.length;
      }, 'every message to reach a final status');
    } finally {
      await mta.stop();
    }
    const text = await (await fetch(`${server.url}/metrics`)).text();
    // The simulator's hosts are no known provider: class other (a bounded label, never the host).
    expect(
      sample(text, 'herald_smtp_session_seconds_count{domain_class="other",result="open"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'herald_smtp_transaction_seconds_count{domain_class="other"}')).toBe(recipients.length);
    expect(sample(text, 'herald_smtp_transaction_seconds_sum{domain_class="other"}')).toBeGreaterThan(0);
    expect(sample(text, 'herald_dkim_signing_seconds_count')).toBe(recipients.length);
    expect(sample(text, 'herald_dkim_signing_seconds_sum')).toBeGreaterThan(0);
    expect(text).not.toMatch(/accept\.test|gmail\.test|@/);
  });

  it('counts tracking events and reports the consolidation lag; the tracking server answers healthz and readyz', async () => {
    const tracking = await createTrackingService(herald);
    const base = await tracking.listen();
    try {
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      // A port open to the Internet: the status only, no migration names.
      expect(await ready.json()).toEqual({ status: 'ready' });

      const [log] = await herald.store.db.selectFrom('delivery_logs').select(['id', 'delivery_id']).limit(1).execute();
      const token = tracking.keyRing.sign({
        kind: 'open',
        deliveryId: Number(log!.delivery_id),
        logId: Number(log!.id),
        issuedAt: Math.floor(Date.now() / 1000),
      });
      // An event a minute old, not consolidated: the lag is at least its age.
      await insertTrackingEvents(herald.store, [
        {
          deliveryId: Number(log!.delivery_id),
          logId: Number(log!.id),
          kind: 'click',
          linkIndex: 0,
          at: Date.now() - 60_000,
          flags: 0,
          userAgent: null,
        },
      ]);
      const before = sample(
        await (await fetch(`${server.url}/metrics`)).text(),
        'herald_tracking_events_total{kind="open"}',
      );
      const open = await fetch(`${base}/o/${token}`);
      expect(open.status).toBe(200);
      await open.arrayBuffer();
      await tracking.events.flush();
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(sample(text, 'herald_tracking_events_total{kind="open"}')).toBe(before + 1);
      expect(sample(text, 'herald_tracking_consolidation_lag_seconds')).toBeGreaterThanOrEqual(60);
      expect(sample(text, 'herald_tracking_events_unconsolidated')).toBe(2);
    } finally {
      await tracking.close();
    }
  });
});
