import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClassifierSource } from '../src/bounce/qualification-classifier.ts';
import { configSchema } from '../src/config/schema.ts';
import { heldPrefix } from '../src/mta/dispatch.ts';
import type { MtaConfig } from '../src/mta/queue-runner.ts';
import type { ClassifyReply } from '../src/bounce/types.ts';
import { createReplyClassifier } from '../src/bounce/reply-classifier.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect, type DialectContext } from './support/databases.ts';
import { createShapedMta } from './support/shaped-mta.ts';
import { waitFor } from './support/wait.ts';

// Issue 3 acceptance, in one MTA process against the ISP simulator: the rate toward a rule's MX
// follows maxMessagesPerHour (scaled: shaping.ratePeriodMs = 10 s is "an hour"), sessions never
// exceed maxConnections, no session carries more than maxMessagesPerConnection, affinities spread
// messages 5/5/1 over real loopback source addresses, an unknown affinity holds the delivery with
// a clear message, a reload is live within a second with counters intact, and a 421 4.7.0 turns
// into a backoff visible in `herald mx stats` that reverts by itself.

const periodMs = 10_000;
let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ trackRecipients: false, rateLimitPerMinute: 30 });
});
afterAll(async () => {
  await simulator.close();
});

function mtaConfig(): MtaConfig {
  return configSchema.parse({
    mta: {
      heloName: 'mta.herald.test',
      routes: simulator.routes,
      resolverServers: [simulator.dnsServer],
      connectTimeoutMs: 2_000,
      commandTimeoutMs: 2_000,
      dataTimeoutMs: 2_000,
      retryDelaysSeconds: [600],
      pollIntervalMs: 50,
    },
  }).mta;
}

function writePack(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-rules-')), 'rules.yaml');
  writeFileSync(file, yaml);
  return file;
}

const generic = `  - name: generic
    mask: "*"
    maxConnections: 10
    maxMessagesPerHour: 100000000
`;

async function startShaped(
  context: DialectContext,
  rulesFile: string,
  shaping: Record<string, unknown> = {},
  nodeId = `shaped-${context.dialect}`,
  classify?: ClassifyReply,
) {
  return await createShapedMta(context, {
    mta: mtaConfig(),
    shaping: { rulesFiles: [rulesFile], ratePeriodMs: periodMs, reloadCheckMs: 100, ...shaping },
    nodeId,
    classify,
  });
}

async function sentTimes(context: DialectContext, deliveryId: number): Promise<number[]> {
  const rows = await context
    .store()
    .db.selectFrom('delivery_logs')
    .select('sent_at')
    .where('delivery_id', '=', deliveryId)
    .where('status', '=', 'sent')
    .execute();
  return rows.map((row) => Number(row.sent_at)).sort((a, b) => a - b);
}

describeEachDialect('MTA with MX rules (shaping)', (context) => {
  const tag = (local: string, domain: string) => `${local}.${context.dialect}@${domain}`;

  it('achieved rate never above maxMessagesPerHour (+10% of wall-clock jitter) and not far below it, sessions ≤ maxConnections, messages per session ≤ maxMessagesPerConnection', async () => {
    const rules = writePack(`rules:
  - name: sim-google
    mask: "*.google.test"
    maxConnections: 3
    maxMessagesPerHour: 300
    maxMessagesPerConnection: 7
    # 30 messages/s: a small fraction of what one MTA does even on a 2-core machine loaded 6x over
    # (74 messages/s measured at load 12), so the limit is what binds.
    burst: 3
${generic}`);
    const sink = simulator.sinks.get('gmail-smtp-in.l.google.test')!;
    const before = sink.stats();
    const count = 240;
    const recipients = Array.from({ length: count }, (_, i) => ({
      email: tag(`rate${i}`, 'gmail.test'),
      data: { first_name: 'Pat' },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, { now: Date.now(), recipients });
    const { mta, shaping } = await startShaped(context, rules);
    shaping.start();
    await mta.start();
    try {
      await waitFor(async () => (await sentTimes(context, deliveryId)).length === count, 'every message sent', 20_000);
    } finally {
      await mta.stop();
      await shaping.stop();
    }
    const times = await sentTimes(context, deliveryId);
    // GCRA: `burst` (3) at once, then one every periodMs/300 ms. Steady state: the first 10% (connection set-up, the
    // burst) left out; at most burst + rate × span in any span, so the burst is subtracted from the count.
    const late = times.slice(count / 10);
    const perPeriod = ((late.length - 1 - 3) / (late[late.length - 1]! - late[0]!)) * periodMs;
    console.log(
      `achieved ${perPeriod.toFixed(0)} per period against maxMessagesPerHour 300 (${((perPeriod / 300 - 1) * 100).toFixed(1)} %)`,
    );
    // The limit is a ceiling. Its ±5 % precision is proven in simulated time (src/shaping/throttle.test.ts); here the
    // times are wall-clock outcome times, which bunch by a few hundred ms on a loaded 2-core machine: +10 %. Below it
    // only by what a loaded machine costs: 20 % of margin.
    expect(perPeriod).toBeLessThan(300 * 1.1);
    expect(perPeriod).toBeGreaterThan(300 * 0.8);
    const after = sink.stats();
    expect(after.messagesAccepted - before.messagesAccepted).toBe(count);
    expect(after.maxConcurrentSessions).toBeLessThanOrEqual(3);
    expect(after.maxMessagesPerConnection).toBeLessThanOrEqual(7);
    expect(after.maxMessagesPerConnection).toBe(7);
  });

  it('affinity 5/5/1 over 127.0.0.2-4 spreads messages ~45/45/10 %, each path counted under its public id', async () => {
    const rules = writePack(`rules:\n${generic}`);
    const { mta, shaping } = await startShaped(context, rules, {
      // The path counters read below count the last ratePeriodMs: an hour, as in production, so they
      // hold every message of the run. With the file's 10 s, a loaded machine's longer run lost its
      // first messages from them (the shares summed to 0.985).
      ratePeriodMs: 3_600_000,
      affinities: [
        {
          name: 'marketing',
          addresses: [
            { address: '127.0.0.2', heloName: 'mta2.herald.test', publicId: 2, weight: 5 },
            { address: '127.0.0.3', heloName: 'mta3.herald.test', publicId: 3, weight: 5 },
            { address: '127.0.0.4', heloName: 'mta4.herald.test', publicId: 4, weight: 1 },
          ],
        },
      ],
    });
    const count = 1_100;
    const recipients = Array.from({ length: count }, (_, i) => ({
      email: tag(`aff${i}`, 'accept.test'),
      data: { first_name: 'Pat' },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, {
      now: Date.now(),
      recipients,
      affinity: 'marketing',
    });
    await mta.start();
    try {
      await waitFor(async () => (await sentTimes(context, deliveryId)).length === count, 'every message sent', 20_000);
      const snapshot = await shaping.shaper.snapshot();
      const byId = new Map<number, number>();
      for (const path of snapshot.paths)
        if (path.mxHost === 'mx.accept.test') byId.set(path.publicId, (byId.get(path.publicId) ?? 0) + path.messages);
      const share = (id: number) => (byId.get(id) ?? 0) / count;
      expect(share(2) + share(3) + share(4)).toBeCloseTo(1, 9);
      expect(share(2)).toBeGreaterThan(0.38);
      expect(share(3)).toBeGreaterThan(0.38);
      expect(share(4)).toBeGreaterThan(0.05);
      expect(share(4)).toBeLessThan(0.15);
    } finally {
      await mta.stop();
      await shaping.stop();
    }
  });

  it('an unknown affinity leaves the delivery pending, attempts untouched, with the reason in last_error and `herald delivery show`', async () => {
    const rules = writePack(`rules:\n${generic}`);
    const { mta, shaping } = await startShaped(context, rules, {
      affinities: [
        { name: 'marketing', addresses: [{ address: '127.0.0.2', heloName: 'mta2.herald.test', publicId: 2 }] },
      ],
    });
    const now = Date.now();
    const recipients = Array.from({ length: 5 }, (_, i) => ({
      email: tag(`lost${i}`, 'accept.test'),
      data: { first_name: 'Pat' },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, { now, recipients, affinity: 'transactional' });
    const { db } = context.store();
    await mta.start();
    try {
      await mta.drain();
    } finally {
      await mta.stop();
      await shaping.stop();
    }
    const logs = await db.selectFrom('delivery_logs').selectAll().where('delivery_id', '=', deliveryId).execute();
    for (const log of logs) {
      expect(log).toMatchObject({ status: 'pending', attempts: 0, claimed_by: null, last_reply_code: null });
      expect(Number(log.next_attempt_at)).toBeGreaterThan(now + 30_000);
    }
    const shown = await runHerald(context.url(), ['delivery', 'show', String(deliveryId), '--json']);
    const lastError = String(shown.json()[0]?.lastError);
    expect(lastError.startsWith(heldPrefix)).toBe(true);
    expect(lastError).toContain('unknown affinity "transactional" (known: marketing)');
  });

  it('a changed pack is live within a second of the write, counters intact', async () => {
    const pack = (rate: number) => `rules:
  - name: sim-yahoo
    mask: "*.yahoodns.test"
    maxConnections: 2
    maxMessagesPerHour: ${rate}
${generic}`;
    const rules = writePack(pack(600));
    const count = 400;
    const recipients = Array.from({ length: count }, (_, i) => ({
      email: tag(`reload${i}`, 'yahoo.test'),
      data: { first_name: 'Pat' },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, { now: Date.now(), recipients });
    const { mta, shaping } = await startShaped(context, rules);
    shaping.start();
    await mta.start();
    try {
      // 600 per 10 s: 60/s. Let it run at the old rate for a moment.
      await waitFor(
        async () => (await sentTimes(context, deliveryId)).length >= 40,
        '40 messages at the old rate',
        10_000,
      );
      const countedBefore = (await shaping.shaper.snapshot()).paths.find((p) => p.rule === 'sim-yahoo')!.messages;
      const written = Date.now();
      writeFileSync(rules, pack(6_000));
      await waitFor(
        () =>
          shaping.shaper.limitsFor('mta5.am0.yahoodns.test').rule === 'sim-yahoo' &&
          shaping.rules.current().byName('sim-yahoo')!.maxMessagesPerHour === 6_000,
        'the new pack in force',
        1_000,
      );
      const liveAfterMs = Date.now() - written;
      await waitFor(async () => (await sentTimes(context, deliveryId)).length === count, 'every message sent', 15_000);
      const after = (await shaping.shaper.snapshot()).paths.find((p) => p.rule === 'sim-yahoo')!;
      // Counters are keyed by rule name + path: the reload kept every message counted before it.
      expect(countedBefore).toBeGreaterThanOrEqual(40);
      expect(after.messages).toBe(count);
      const times = await sentTimes(context, deliveryId);
      const late = times.filter((t) => t > written + 1_000);
      if (late.length > 20) {
        const rate = ((late.length - 1) / (late[late.length - 1]! - late[0]!)) * periodMs;
        // Above what the old rule allows (600 per period), with the +10 % of wall-clock jitter the first
        // test allows: the old rule no longer binds. 1,200 (twice the old rule) asked a 120/s pace of the
        // machine: 954 measured at a load of 17 on 2 cores.
        expect(rate).toBeGreaterThan(600 * 1.1);
      }
      expect(liveAfterMs).toBeLessThan(1_000);
    } finally {
      await mta.stop();
      await shaping.stop();
    }
  });

  it('a 421 4.7.0 rate-limit reply triggers a backoff shown by `herald mx stats`, reverted after its period', async () => {
    const rules = writePack(`rules:
  - name: sim-ratelimit
    mask: mx.ratelimit.test
    maxConnections: 2
    maxMessagesPerHour: 100000
${generic}backoff:
  - name: rate-limited-421
    reply: "^421 4\\\\.7\\\\.0\\\\b"
    factor: 0.5
    duration: 1500ms
`);
    const recipients = Array.from({ length: 60 }, (_, i) => ({
      email: tag(`rl${i}`, 'ratelimit.test'),
      data: { first_name: 'Pat' },
    }));
    await seedDelivery(context.store().db, { now: Date.now(), recipients });
    const { mta, shaping } = await startShaped(context, rules, {}, `backoff-${context.dialect}`);
    await mta.start();
    try {
      await waitFor(() => shaping.shaper.backoff.active(Date.now()).length > 0, 'a backoff after 421 4.7.0', 10_000);
      await shaping.writeSnapshot();
      const stats = (await runHerald(context.url(), ['mx', 'stats', '--json'])).json<{
        backoffs: Array<{ rule: string; key: string; factor: number; evidence: { replies: string[] } }>;
      }>()[0]!;
      const backoff = stats.backoffs.find((b) => b.key === 'sim-ratelimit|id0');
      expect(backoff).toMatchObject({ rule: 'rate-limited-421', factor: 0.5 });
      expect(backoff!.evidence.replies[0]).toMatch(/^421 4\.7\.0/);
      const text = (await runHerald(context.url(), ['mx', 'stats'])).stdout.join('\n');
      expect(text).toContain('rate-limited-421');
      await mta.stop();
      // No more 421s: the backoff reverts when its 1.5 s are over.
      await waitFor(() => shaping.shaper.backoff.active(Date.now()).length === 0, 'the backoff to revert', 5_000);
      await shaping.writeSnapshot();
      const later = (await runHerald(context.url(), ['mx', 'stats', '--json'])).json<{ backoffs: unknown[] }>()[0]!;
      expect(later.backoffs).toEqual([]);
    } finally {
      await mta.stop();
      await shaping.stop();
    }
  });

  it('the breaker reads the bounce qualification: greylisting (onhold) never suspends its domain, refused connections do', async () => {
    const rules = writePack(`rules:\n${generic}`);
    const now = Date.now();
    const grey = Array.from({ length: 6 }, (_, i) => ({
      email: tag(`grey${i}`, 'greylist.test'),
      data: { first_name: 'Pat' },
    }));
    const down = Array.from({ length: 6 }, (_, i) => ({
      email: tag(`down${i}`, 'down.test'),
      data: { first_name: 'Pat' },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, { now, recipients: [...grey, ...down] });
    // The production classifier: the shipped bounce rules (src/bounce/reply-classifier.ts).
    const classifiers = await createClassifierSource({
      siteRulesFile: join(mkdtempSync(join(tmpdir(), 'herald-site-')), 'bounce.yaml'),
      checkMs: 0,
    });
    const classify = createReplyClassifier(() => classifiers.current());
    const { mta, shaping } = await startShaped(
      context,
      rules,
      { breaker: { minMessages: 5, errorRatio: 0.9, suspendMinutes: 180 } },
      `grey-breaker-${context.dialect}`,
      classify,
    );
    await mta.start();
    try {
      const rows = async () =>
        context
          .store()
          .db.selectFrom('delivery_logs')
          .select(['email', 'attempts', 'last_reply_code', 'failure_category'])
          .where('delivery_id', '=', deliveryId)
          .execute();
      await waitFor(
        async () => (await rows()).every((row) => Number(row.attempts) === 1),
        'every message to be tried once',
        10_000,
      );
      const greyRows = (await rows()).filter((row) => row.email.endsWith('@greylist.test'));
      for (const row of greyRows) expect(row).toMatchObject({ last_reply_code: 451, failure_category: 'onhold' });
      expect(shaping.shaper.checkDomain('greylist.test').kind).toBe('open');
      expect(shaping.shaper.checkDomain('down.test').kind).toBe('suspended');
    } finally {
      await mta.stop();
      await shaping.stop();
      classifiers.close();
    }
  });

  it('a domain suspended by the breaker holds its messages no longer than their delivery is valid', async () => {
    const rules = writePack(`rules:\n${generic}`);
    const now = Date.now();
    // Five refused connections suspend down.test (breaker: 5 messages, 90 % errors, 3 hours)...
    const tripping = Array.from({ length: 5 }, (_, i) => ({
      email: tag(`trip${i}`, 'down.test'),
      data: { first_name: 'Pat' },
    }));
    await seedDelivery(context.store().db, { now, recipients: tripping });
    // ...then a delivery valid for 2 more seconds reaches the suspended domain.
    const held = Array.from({ length: 4 }, (_, i) => ({
      email: tag(`held${i}`, 'down.test'),
      data: { first_name: 'Pat' },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, {
      now,
      recipients: held,
      nextAttemptAt: now + 1_000,
      validUntil: now + 2_000,
    });
    const { mta, shaping } = await startShaped(
      context,
      rules,
      { breaker: { minMessages: 5, errorRatio: 0.9, suspendMinutes: 180 } },
      `breaker-${context.dialect}`,
    );
    shaping.start();
    await mta.start();
    try {
      const finalRows = async () =>
        context
          .store()
          .db.selectFrom('delivery_logs')
          .select(['status', 'failure_reason', 'attempts'])
          .where('delivery_id', '=', deliveryId)
          .execute();
      await waitFor(
        async () => (await finalRows()).every((row) => row.status === 'failed'),
        'held messages to expire with their delivery',
        15_000,
      );
      for (const row of await finalRows())
        expect(row).toMatchObject({ status: 'failed', failure_reason: 'expired', attempts: 0 });
    } finally {
      await mta.stop();
      await shaping.stop();
    }
  });
});
