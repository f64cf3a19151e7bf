import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClassifierSource } from '../src/bounce/qualification-classifier.ts';
import { createReplyClassifier } from '../src/bounce/reply-classifier.ts';
import { configSchema } from '../src/config/schema.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import type { SmtpReply } from '../src/sim/sink-behaviour.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { describeEachDialect } from './support/databases.ts';
import { createShapedMta } from './support/shaped-mta.ts';
import { drainMta } from './support/drain-mta.ts';

// A 554 at the greeting is the MX host refusing this client, typically its IP on a blocklist. The
// MTA took it for an unreachable path: it avoided that source address on the host for 5 minutes
// and sent the message again at once from another address of the affinity, which went through.
// Rotating source IPs around a block is snowshoeing, what gets every IP of the pool listed. Now
// the message stays on its source address: the host's next MX host (same address) is tried, as
// the block may be that host's alone, and with none left the 554 is the attempt's reply.

const blocked: SmtpReply = {
  code: 554,
  enhanced: '5.7.1',
  text: 'Service unavailable; Client host [127.0.0.2] blocked using zen.spamhaus.org',
};

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({
    trackRecipients: true,
    scenario: {
      domains: [
        {
          name: 'blocking.test',
          weight: 1,
          behaviour: 'blocks 127.0.0.2',
          mx: [{ exchange: 'mx.blocking.test', priority: 10 }],
        },
        {
          name: 'closed.test',
          weight: 1,
          behaviour: 'plain 554 greeting',
          mx: [{ exchange: 'mx.closed.test', priority: 10 }],
        },
        {
          name: 'two-mx.test',
          weight: 1,
          behaviour: 'first MX blocks 127.0.0.2',
          mx: [
            { exchange: 'mx1.two-mx.test', priority: 10 },
            { exchange: 'mx2.two-mx.test', priority: 20 },
          ],
        },
      ],
      hosts: [
        { name: 'mx.blocking.test', kind: 'sink', behaviour: { greetingByClient: { '127.0.0.2': blocked } } },
        { name: 'mx1.two-mx.test', kind: 'sink', behaviour: { greetingByClient: { '127.0.0.2': blocked } } },
        { name: 'mx2.two-mx.test', kind: 'sink', behaviour: {} },
        // RFC 5321 §4.2's own example of a greeting refusal: no status, no reason.
        {
          name: 'mx.closed.test',
          kind: 'sink',
          behaviour: { greeting: { code: 554, text: 'mx.closed.test ESMTP not accepting messages' } },
        },
      ],
    },
  });
});
afterAll(async () => {
  await simulator.close();
});

describeEachDialect('a 554 greeting refusing a source address', (context) => {
  it('does not move the message to another source address; the next MX host is tried from the same one', async () => {
    const tag = (local: string, domain: string) => `${local}.${context.dialect}@${domain}`;
    const classifiers = await createClassifierSource({
      siteRulesFile: join(mkdtempSync(join(tmpdir(), 'herald-site-')), 'bounce.yaml'),
      checkMs: 0,
    });
    const { mta } = await createShapedMta(context, {
      mta: configSchema.parse({
        mta: {
          heloName: 'mta.herald.test',
          routes: simulator.routes,
          resolverServers: [simulator.dnsServer],
          connectTimeoutMs: 2_000,
          commandTimeoutMs: 2_000,
          retryDelaysSeconds: [600],
          pollIntervalMs: 50,
        },
      }).mta,
      shaping: {
        affinities: [
          {
            name: 'marketing',
            addresses: [
              { address: '127.0.0.2', heloName: 'mta2.herald.test', publicId: 2 },
              { address: '127.0.0.3', heloName: 'mta3.herald.test', publicId: 3 },
            ],
          },
        ],
      },
      nodeId: `greeting-${context.dialect}`,
      classify: createReplyClassifier(() => classifiers.current()),
    });
    const count = 20;
    const recipients = ['blocking.test', 'two-mx.test'].flatMap((domain) =>
      Array.from({ length: count }, (_, i) => ({ email: tag(`r${i}`, domain), data: { first_name: 'Pat' } })),
    );
    const { deliveryId } = await seedDelivery(context.store().db, {
      now: Date.now(),
      recipients,
      affinity: 'marketing',
    });
    const before = simulator.stats().hosts;
    await drainMta(mta);
    const logs = await context
      .store()
      .db.selectFrom('delivery_logs')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .execute();
    const connectionsFrom = (host: string, client: string) =>
      (simulator.stats().hosts[host]!.connectionsByClient[client] ?? 0) -
      (before[host]!.connectionsByClient[client] ?? 0);

    // One MX host: the recipients drawn to 127.0.0.2 get its 554 (blocked, soft: retried later, from
    // 127.0.0.2 again); the others leave from 127.0.0.3. None is rerouted around the block.
    const single = logs.filter((log) => log.domain === 'blocking.test');
    const refused = single.filter((log) => log.status !== 'sent');
    expect(refused.length).toBeGreaterThan(0);
    for (const log of refused)
      expect(log).toMatchObject({
        status: 'pending',
        last_reply_code: 554,
        failure_type: 'soft',
        failure_category: 'blocked',
      });
    expect(single.filter((log) => log.status === 'sent')).toHaveLength(count - refused.length);
    expect(
      simulator.stats().hosts['mx.blocking.test']!.messagesAccepted - before['mx.blocking.test']!.messagesAccepted,
    ).toBe(count - refused.length);

    // Two MX hosts: the first blocks 127.0.0.2, the second takes its messages from 127.0.0.2.
    const pair = logs.filter((log) => log.domain === 'two-mx.test');
    for (const log of pair) expect(log.status).toBe('sent');
    const viaSecond = pair.filter((log) => log.mx_host === 'mx2.two-mx.test');
    expect(viaSecond.length).toBeGreaterThan(0);
    expect(connectionsFrom('mx2.two-mx.test', '127.0.0.2')).toBeGreaterThan(0);
    expect(connectionsFrom('mx2.two-mx.test', '127.0.0.3')).toBe(0);
  });
});

describeEachDialect('a 554 greeting whatever its words', (context) => {
  // Qualification was not told the reply came at the greeting: "554 mx.closed.test ESMTP not
  // accepting messages" was `undefined`, so nothing told the operator the host refuses its IP.
  it('is qualified as the host refusing the sending IP (blocked, soft)', async () => {
    const classifiers = await createClassifierSource({
      siteRulesFile: join(mkdtempSync(join(tmpdir(), 'herald-site-')), 'bounce.yaml'),
      checkMs: 0,
    });
    const { mta } = await createShapedMta(context, {
      mta: configSchema.parse({
        mta: {
          heloName: 'mta.herald.test',
          routes: simulator.routes,
          resolverServers: [simulator.dnsServer],
          retryDelaysSeconds: [600],
          pollIntervalMs: 50,
        },
      }).mta,
      shaping: {},
      nodeId: `closed-${context.dialect}`,
      classify: createReplyClassifier(() => classifiers.current()),
    });
    const { deliveryId } = await seedDelivery(context.store().db, {
      now: Date.now(),
      recipients: [{ email: `pat.${context.dialect}@closed.test`, data: { first_name: 'Pat' } }],
    });
    await drainMta(mta);
    const log = await context
      .store()
      .db.selectFrom('delivery_logs')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .executeTakeFirst();
    expect(log).toMatchObject({
      status: 'pending',
      last_reply_code: 554,
      failure_type: 'soft',
      failure_reason: 'refused',
      failure_category: 'blocked',
    });
  });
});
