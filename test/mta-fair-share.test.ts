import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { readShapingSnapshots } from '../src/shaping/stats-store.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect, type DialectContext } from './support/databases.ts';
import { createShapedMta } from './support/shaped-mta.ts';
import { waitFor } from './support/wait.ts';

// Issue 18, fair share: several deliveries sending to the same MX host share its MX rule's budget
// by priority (higher first) and weight (in proportion within a priority). One MTA against the ISP
// simulator, a rule that binds (100 messages/s: shaping.ratePeriodMs = 2 s is "an hour"); the order
// is read from the outcomes' sent_at, so the assertions are counts, never durations.

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ trackRecipients: false });
});
afterAll(async () => {
  await simulator.close();
});

const rules = (() => {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-fair-')), 'rules.yaml');
  writeFileSync(
    file,
    `rules:
  - name: sim-google
    mask: "*.google.test"
    maxConnections: 2
    maxMessagesPerHour: 200
    burst: 3
  - name: generic
    mask: "*"
    maxConnections: 10
    maxMessagesPerHour: 100000000
`,
  );
  return file;
})();

/** Small batches by default: the claim's split between deliveries matters, not only the path queue's. */
async function startMta(context: DialectContext, batches = { claimBatchSize: 20, maxQueued: 60 }) {
  const nodeId = `fair-${context.dialect}`;
  const config = configSchema.parse({
    mta: {
      heloName: 'mta.herald.test',
      routes: simulator.routes,
      resolverServers: [simulator.dnsServer],
      retryDelaysSeconds: [600],
      pollIntervalMs: 50,
      ...batches,
    },
  }).mta;
  const { mta, shaping } = await createShapedMta(context, {
    mta: config,
    shaping: { rulesFiles: [rules], ratePeriodMs: 2_000, statsIntervalMs: 1_000 },
    nodeId,
  });
  return {
    async start() {
      shaping.start();
      await mta.start();
    },
    async stop() {
      await mta.stop();
      await shaping.stop();
    },
  };
}

/** The sent logs of these deliveries, in the order they were sent (by sent_at, then id). */
async function sentLogs(
  context: DialectContext,
  deliveryIds: number[],
): Promise<Array<{ deliveryId: number; sentAt: number }>> {
  const rows = await context
    .store()
    .db.selectFrom('delivery_logs')
    .select(['delivery_id', 'sent_at'])
    .where('delivery_id', 'in', deliveryIds)
    .where('status', '=', 'sent')
    .orderBy('sent_at')
    .orderBy('id')
    .execute();
  return rows.map((row) => ({ deliveryId: Number(row.delivery_id), sentAt: Number(row.sent_at) }));
}

/** Delivery ids of the sent logs of these deliveries, in the order they were sent. */
async function sendingOrder(context: DialectContext, deliveryIds: number[]): Promise<number[]> {
  return (await sentLogs(context, deliveryIds)).map((log) => log.deliveryId);
}

function countOf(values: number[], value: number): number {
  return values.filter((v) => v === value).length;
}

describeEachDialect('fair share of an MX rule between deliveries', (context) => {
  const recipients = (prefix: string, count: number) =>
    Array.from({ length: count }, (_, i) => ({
      email: `${prefix}${i}.${context.dialect}@gmail.test`,
      data: { first_name: 'Pat' },
    }));

  async function sendAll(deliveryIds: number[], total: number): Promise<number[]> {
    await waitFor(
      async () => (await sendingOrder(context, deliveryIds)).length === total,
      'every message sent',
      30_000,
    );
    return sendingOrder(context, deliveryIds);
  }

  it('two equal deliveries progress at equal rates; weight 3 against 1 takes three quarters', async () => {
    const now = Date.now();
    const first = await seedDelivery(context.store().db, { now, recipients: recipients('eqa', 150) });
    const second = await seedDelivery(context.store().db, { now, recipients: recipients('eqb', 150) });
    const heavy = await seedDelivery(context.store().db, { now, recipients: recipients('wa', 150), weight: 3 });
    const light = await seedDelivery(context.store().db, { now, recipients: recipients('wb', 150), weight: 1 });
    // The equal pair sends first (priority 6), then the weighted pair: two measurements in one run.
    await context
      .store()
      .db.updateTable('deliveries')
      .set({ priority: 6 })
      .where('id', 'in', [first.deliveryId, second.deliveryId])
      .execute();
    const mta = await startMta(context);
    await mta.start();
    let order: number[];
    try {
      order = await sendAll([first.deliveryId, second.deliveryId, heavy.deliveryId, light.deliveryId], 600);
    } finally {
      await mta.stop();
    }
    // Priority: the weighted pair rides along only in each claim's minimum of one message per delivery
    // (claimQuotas: 9 + 9 + 1 + 1 of a claim of 20), and goes out early only when the path has no equal
    // message waiting — on a loaded machine, often. When the 150th message was sent at most 150 +
    // maxQueued (60) were claimed: 11 claims, 22 weighted messages; without priority it would be 75.
    const equalHalf = order.slice(0, 150);
    expect(countOf(equalHalf, first.deliveryId) + countOf(equalHalf, second.deliveryId)).toBeGreaterThanOrEqual(
      150 - 22,
    );
    // Equal rates within 10 %: between the 30th and the 150th message sent, each sent about half. The
    // first 30 are the start (connections opening, first claims), not a rate: on a machine loaded by
    // other work one delivery's first claim could go out alone. Every message sent in a boundary's
    // millisecond counts: sent_at ties are not an order, and breaking them by id would favour the first
    // delivery (its ids are all lower).
    const sent = await sentLogs(context, [first.deliveryId, second.deliveryId, heavy.deliveryId, light.deliveryId]);
    const byThen = sent
      .filter((log) => log.sentAt > sent[29]!.sentAt && log.sentAt <= sent[149]!.sentAt)
      .map((log) => log.deliveryId);
    const a = countOf(byThen, first.deliveryId);
    const b = countOf(byThen, second.deliveryId);
    expect(Math.abs(a - b)).toBeLessThanOrEqual(0.1 * Math.max(a, b));
    // Weight 3 against 1: the first 120 weighted messages sent once the equal pair is done. Not order[300..]:
    // the weighted messages that went early leave as many of the equal pair's messages after the 300th
    // (21 of 120 on a loaded PostgreSQL run: a share of 0.58 measured on the wrong messages).
    const lastEqual = Math.max(order.lastIndexOf(first.deliveryId), order.lastIndexOf(second.deliveryId));
    const weighted = order.slice(lastEqual + 1).slice(0, 120);
    expect(weighted.length).toBe(120);
    const heavyShare = countOf(weighted, heavy.deliveryId) / weighted.length;
    expect(heavyShare).toBeGreaterThan(0.75 * 0.9);
    expect(heavyShare).toBeLessThan(0.75 * 1.1);
  });

  it('an urgent delivery started later is not stuck behind a running newsletter; mx stats and delivery show say how the path is split', async () => {
    const newsletter = await seedDelivery(context.store().db, {
      now: Date.now(),
      recipients: recipients('news', 500),
    });
    // The path queue's order is what this test is about, so the urgent delivery comes in one claim: a
    // claim is made when fewer than maxQueued / 2 (100) are in hand, for up to 100 of which 99 are the
    // urgent delivery's (claimQuotas). In claims of 20 (the default above), a loaded machine sent the
    // newsletter's messages in hand while the next urgent claim was on its way: 8 and 9 of them
    // between the first and the last urgent message, none of them out of priority order.
    const mta = await startMta(context, { claimBatchSize: 100, maxQueued: 200 });
    await mta.start();
    let order: number[];
    let urgentId: number;
    try {
      await waitFor(
        async () => (await sendingOrder(context, [newsletter.deliveryId])).length >= 30,
        'the newsletter under way',
      );
      const urgent = await seedDelivery(context.store().db, {
        now: Date.now(),
        recipients: recipients('urgent', 60),
        priority: 9,
      });
      urgentId = urgent.deliveryId;
      await waitFor(
        async () => (await sendingOrder(context, [urgentId])).length === 60,
        'every urgent message sent',
        30_000,
      );
      order = await sendingOrder(context, [newsletter.deliveryId, urgentId]);
      await waitFor(
        async () =>
          (await readShapingSnapshots(context.store(), Date.now() - 5_000)).some((snapshot) =>
            snapshot.paths.some((path) => path.shares?.some((share) => share.deliveryId === urgentId)),
          ),
        'a shaping snapshot with the urgent delivery',
      );
    } finally {
      await mta.stop();
    }
    const firstUrgent = order.indexOf(urgentId);
    const lastUrgent = order.lastIndexOf(urgentId);
    const newsletterBetween = order.slice(firstUrgent, lastUrgent + 1).filter((id) => id !== urgentId).length;
    // Only messages already in a transaction when the urgent ones arrived may go between them.
    expect(newsletterBetween).toBeLessThanOrEqual(6);
    // When the last urgent message was sent, the newsletter was far from done: it did not wait for it.
    expect(order.slice(0, lastUrgent).filter((id) => id !== urgentId).length).toBeLessThan(400);

    const stats = await runHerald(context.url(), ['mx', 'stats']);
    const statsText = stats.stdout.join('\n');
    expect(statsText).toContain('budget split per path (last 5 min):');
    expect(statsText).toMatch(new RegExp(`delivery ${urgentId} \\(priority 9, weight 1\\) 60 msgs`));
    const show = await runHerald(context.url(), ['delivery', 'show', String(urgentId), '--json']);
    const shown = show.json<{
      priority: number;
      paths: Array<{ pathId: string; messages: number; shares: Array<{ deliveryId: number }> }>;
    }>()[0]!;
    expect(shown.priority).toBe(9);
    const path = shown.paths.find((p) => p.pathId.startsWith('sim-google|'))!;
    expect(path.messages).toBe(60);
    expect(path.shares.map((s) => s.deliveryId)).toContain(newsletter.deliveryId);
  });
});
