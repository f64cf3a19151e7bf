import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualClock, type Clock } from '../src/common/clock.ts';
import { configSchema } from '../src/config/schema.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { createMta, type MtaConfig } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startDnsServer, type DnsServer } from '../src/sim/dns-server.ts';
import { startSmtpSink, type SmtpSink } from '../src/sim/smtp-sink.ts';
import { describeEachDialect } from './support/databases.ts';
import { createShapedMta } from './support/shaped-mta.ts';
import { drainMta } from './support/drain-mta.ts';

// RFC 5321 §5.1: an MX host name may resolve to several addresses (A and AAAA); when one cannot be
// reached the client tries the host's others before the next MX host. Only the first was tried: a
// host whose first address was down deferred every message although its second one listened.

let sink: SmtpSink;
let busy: SmtpSink;
let dns: DnsServer;
beforeAll(async () => {
  sink = await startSmtpSink({ hostname: 'mx.multi.test', tls: false });
  // The same port on 127.0.0.3: a server too busy to take the session (421 at the greeting).
  busy = await startSmtpSink({
    hostname: 'mx.busy-first.test',
    host: '127.0.0.3',
    port: sink.port,
    tls: false,
    behaviour: { greeting: { code: 421, enhanced: '4.3.2', text: 'Service not available', close: true } },
  });
  dns = await startDnsServer({
    records: {
      // 127.0.0.2 has nothing listening on the sink's port: refused.
      'multi.test': { mx: [{ exchange: 'mx.multi.test', priority: 10 }] },
      'mx.multi.test': { a: ['127.0.0.2', sink.host] },
      'busy-first.test': { mx: [{ exchange: 'mx.busy-first.test', priority: 10 }] },
      'mx.busy-first.test': { a: ['127.0.0.3', sink.host] },
    },
  });
});
afterAll(async () => {
  await sink.close();
  await busy.close();
  await dns.close();
});

describeEachDialect('an MX host with several addresses', (context) => {
  const plainConfig = () =>
    configSchema.parse({ mta: { resolverServers: [dns.address], allowPrivateMxAddresses: true, pollIntervalMs: 20 } })
      .mta;
  /** Runs an MTA on the test's database until nothing is due, MX hosts found in DNS reached on the sink's port. */
  const sendAll = async (nodeId: string, config: MtaConfig, clock: Clock) => {
    const mta = createMta({ store: createMtaStore(context.store()), nodeId, config, clock, mxPort: sink.port });
    await drainMta(mta);
  };

  it('is reached on its second address when its first refuses the connection, within the host’s connection cap', async () => {
    const { db } = context.store();
    const clock = manualClock(Date.UTC(2026, 2, 1));
    const emails = Array.from({ length: 20 }, (_, i) => `r${i}.${context.dialect}@multi.test`);
    const before = sink.stats();
    const { deliveryId } = await seedDelivery(db, {
      now: clock.now(),
      recipients: emails.map((email) => ({ email, data: { first_name: 'Pat' } })),
    });
    const config = configSchema.parse({
      mta: {
        resolverServers: [dns.address],
        allowPrivateMxAddresses: true,
        pollIntervalMs: 20,
        connectTimeoutMs: 2_000,
        maxConnectionsPerMx: 2,
        maxMessagesPerConnection: 3,
      },
    }).mta;
    await sendAll(`multi-${context.dialect}`, config, clock);
    const logs = await db.selectFrom('delivery_logs').selectAll().where('delivery_id', '=', deliveryId).execute();
    expect(logs).toHaveLength(emails.length);
    for (const log of logs)
      expect(log).toMatchObject({ status: 'sent', mx_host: 'mx.multi.test', last_reply_code: 250 });
    for (const email of emails) expect(sink.acceptedCount(email)).toBe(1);
    // The cap is the MX host's: the failed address's connections and the working one's together.
    expect(sink.stats().maxConcurrentSessions).toBeLessThanOrEqual(2);
    expect(sink.stats().connections - before.connections).toBeGreaterThanOrEqual(7);
  });

  it('under MX rules: the second address takes the lease the refused one released, within maxConnections', async () => {
    const rules = join(mkdtempSync(join(tmpdir(), 'herald-rules-')), 'rules.yaml');
    writeFileSync(
      rules,
      'rules:\n  - name: generic\n    mask: "*"\n    maxConnections: 2\n    maxMessagesPerHour: 100000000\n    maxMessagesPerConnection: 3\n',
    );
    const emails = Array.from({ length: 20 }, (_, i) => `s${i}.${context.dialect}@multi.test`);
    const before = sink.stats();
    const { deliveryId } = await seedDelivery(context.store().db, {
      now: Date.now(),
      recipients: emails.map((email) => ({ email, data: { first_name: 'Pat' } })),
    });
    const { mta, shaping } = await createShapedMta(context, {
      mta: configSchema.parse({
        mta: {
          resolverServers: [dns.address],
          allowPrivateMxAddresses: true,
          pollIntervalMs: 20,
          connectTimeoutMs: 2_000,
        },
      }).mta,
      shaping: { rulesFiles: [rules] },
      nodeId: `multi-shaped-${context.dialect}`,
      mxPort: sink.port,
    });
    await mta.start();
    try {
      await mta.drain();
    } finally {
      await mta.stop();
      await shaping.stop();
    }
    const logs = await context
      .store()
      .db.selectFrom('delivery_logs')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .execute();
    for (const log of logs) expect(log).toMatchObject({ status: 'sent', mx_host: 'mx.multi.test' });
    expect(sink.stats().messagesAccepted - before.messagesAccepted).toBe(emails.length);
    expect(sink.stats().maxConcurrentSessions).toBeLessThanOrEqual(2);
  });

  it('delivers to a recipient’s address literal (pat@[127.0.0.1]) at that address, with no MX lookup', async () => {
    const { db } = context.store();
    const clock = manualClock(Date.UTC(2026, 2, 1));
    const email = `literal.${context.dialect}@[${sink.host}]`;
    const { deliveryId } = await seedDelivery(db, {
      now: clock.now(),
      recipients: [{ email, data: { first_name: 'Pat' } }],
    });
    await sendAll(`literal-${context.dialect}`, plainConfig(), clock);
    const log = await db
      .selectFrom('delivery_logs')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .executeTakeFirst();
    expect(log).toMatchObject({ status: 'sent', mx_host: sink.host });
    expect(sink.acceptedCount(email)).toBe(1);
  });

  it('is reached on its second address when its first answers 421 at the greeting', async () => {
    const { db } = context.store();
    const clock = manualClock(Date.UTC(2026, 2, 1));
    const email = `busy.${context.dialect}@busy-first.test`;
    const busyBefore = busy.stats().connections;
    const { deliveryId } = await seedDelivery(db, {
      now: clock.now(),
      recipients: [{ email, data: { first_name: 'Pat' } }],
    });
    await sendAll(`busy-${context.dialect}`, plainConfig(), clock);
    const log = await db
      .selectFrom('delivery_logs')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .executeTakeFirst();
    expect(log).toMatchObject({ status: 'sent', mx_host: 'mx.busy-first.test' });
    expect(busy.stats().connections - busyBefore).toBe(1);
    expect(sink.acceptedCount(email)).toBe(1);
  });
});
