import { afterAll, beforeAll, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.ts';
import { createMta, type MtaConfig } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSmtpSink, type SmtpSink } from '../src/sim/smtp-sink.ts';
import { openStore } from '../src/store/database.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { describeEachDialect } from './support/databases.ts';

// Connection limits, several MTA nodes on one database, and graceful stop: all against one fast sink.

let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink({ hostname: 'mx.nodes.test' });
});
afterAll(async () => {
  await sink.close();
});

function mtaConfig(domain: string, overrides: Partial<MtaConfig> = {}): MtaConfig {
  return configSchema.parse({
    mta: {
      routes: [{ match: domain, host: sink.host, port: sink.port }],
      resolverServers: ['127.0.0.1:9'],
      pollIntervalMs: 20,
      connectTimeoutMs: 2_000,
      ...overrides,
    },
  }).mta;
}

function recipients(tag: string, domain: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({ email: `r${i}.${tag}@${domain}`, data: { first_name: `R${i}` } }));
}

describeEachDialect('MTA nodes', (context) => {
  it('never opens more than maxConnectionsPerMx connections nor sends more than maxMessagesPerConnection on one', async () => {
    const domain = `limits-${context.dialect}.test`;
    const own = await startSmtpSink({ hostname: 'mx.limits.test' });
    try {
      await seedDelivery(context.store().db, { now: Date.now(), recipients: recipients('l', domain, 300) });
      const config = mtaConfig(domain, { maxConnectionsPerMx: 3, maxMessagesPerConnection: 25 });
      config.routes = [{ match: domain, host: own.host, port: own.port }];
      const mta = createMta({ store: createMtaStore(context.store()), nodeId: `limits-${context.dialect}`, config });
      await mta.start();
      await mta.drain();
      await mta.stop();
      const stats = own.stats();
      expect(stats.messagesAccepted).toBe(300);
      expect(stats.maxConcurrentSessions).toBeLessThanOrEqual(3);
      expect(stats.maxConcurrentSessions).toBeGreaterThanOrEqual(2);
      expect(stats.maxMessagesPerConnection).toBeLessThanOrEqual(25);
      // 300 messages at 25 per connection: connections were reused, and renewed.
      expect(stats.connections).toBeGreaterThanOrEqual(12);
      expect(stats.connections).toBeLessThanOrEqual(15);
    } finally {
      await own.close();
    }
  });

  it('two MTA nodes on one database never send a recipient twice', async () => {
    const domain = `twonodes-${context.dialect}.test`;
    const list = recipients('t', domain, 600);
    const { deliveryId } = await seedDelivery(context.store().db, { now: Date.now(), recipients: list });
    const stores = [openStore(context.url()), openStore(context.url())];
    const config = mtaConfig(domain, { claimBatchSize: 40, maxQueued: 100 });
    const nodes = stores.map((store, i) =>
      createMta({ store: createMtaStore(store), nodeId: `node-${i}-${context.dialect}`, config }),
    );
    try {
      await Promise.all(nodes.map((node) => node.start()));
      await Promise.all(nodes.map((node) => node.drain()));
      await Promise.all(nodes.map((node) => node.stop()));
      const counts = list.map((recipient) => sink.acceptedCount(recipient.email));
      expect(counts.filter((count) => count !== 1)).toEqual([]);
      const sentByNode = nodes.map((node) => node.stats().sent);
      expect(sentByNode[0]! + sentByNode[1]!).toBe(600);
      if (context.dialect === 'postgres') expect(Math.min(...sentByNode)).toBeGreaterThan(0);
      const statuses = await context
        .store()
        .db.selectFrom('delivery_logs')
        .select('status')
        .where('delivery_id', '=', deliveryId)
        .execute();
      expect(statuses.every((row) => row.status === 'sent')).toBe(true);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it('graceful stop finishes open transactions, leaves nothing sending, and a restart sends the rest exactly once', async () => {
    const domain = `stop-${context.dialect}.test`;
    const list = recipients('s', domain, 1_500);
    const { deliveryId } = await seedDelivery(context.store().db, { now: Date.now(), recipients: list });
    const mtaStore = createMtaStore(context.store());
    let stopped: Promise<void> | undefined;
    const config = mtaConfig(domain, { claimBatchSize: 200, maxQueued: 400 });
    const first = createMta({
      store: mtaStore,
      nodeId: `stop-${context.dialect}`,
      config,
      // Stop as soon as the first outcomes are committed: the middle of the send.
      onOutcomes: () => {
        stopped ??= first.stop();
      },
    });
    await first.start();
    await new Promise<void>((resolve) => {
      const check = () => (stopped ? resolve() : setImmediate(check));
      check();
    });
    await stopped;
    const rows = await context
      .store()
      .db.selectFrom('delivery_logs')
      .select(['email', 'status'])
      .where('delivery_id', '=', deliveryId)
      .execute();
    expect(rows.filter((row) => row.status === 'sending')).toEqual([]);
    const sent = rows.filter((row) => row.status === 'sent');
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.length).toBeLessThan(1_500);
    for (const row of rows) expect(sink.acceptedCount(row.email)).toBe(row.status === 'sent' ? 1 : 0);

    const second = createMta({ store: mtaStore, nodeId: `stop-${context.dialect}`, config });
    await second.start();
    await second.drain();
    await second.stop();
    expect(list.map((recipient) => sink.acceptedCount(recipient.email)).filter((count) => count !== 1)).toEqual([]);
  });
});
