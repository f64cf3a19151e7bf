import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createInboundRole, type InboundRole } from '../src/bounce/inbound-role.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { inboundCounters } from '../src/bounce/qualification-store.ts';
import { addressTimeline, getAddress } from '../src/quarantine/quarantine-store.ts';
import { consolidateDelivery } from '../src/tracking/consolidation-run.ts';
import { loadKeyRing } from '../src/tracking/keys.ts';
import { deliveryTrackingStats } from '../src/tracking/stats.ts';
import { seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import type { KeyRing } from '../src/tracking/token.ts';
import type { MailUnsubscribeWrite } from '../src/tracking/mail-unsubscribe.ts';
import { describeEachDialect } from './support/databases.ts';

// RFC 8058 mailto: unsubscribe through the inbound role, spoken to with a real SMTP client.

const unsubscribeDomain = 'unsub.brand.test';
const day = 86_400_000;
const tracking = {
  unsubscribeMailDomain: unsubscribeDomain,
  keys: [{ id: 'k1', secret: 'a-long-enough-test-secret-0123456789', createdAt: '2026-01-01' }],
};

interface SendResult {
  accepted: boolean;
  code?: number;
  response?: string;
  error?: string;
}

async function send(port: number, from: string, to: string): Promise<SendResult> {
  const connection = new SMTPConnection({
    host: '127.0.0.1',
    port,
    ignoreTLS: true,
    connectionTimeout: 5_000,
    socketTimeout: 10_000,
  });
  await new Promise<void>((resolve, reject) => {
    connection.once('error', reject);
    connection.connect(() => resolve());
  });
  try {
    // What a mail client sends for a mailto: List-Unsubscribe: a short message, the body irrelevant.
    const raw = `From: ${from}\r\nTo: ${to}\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n`;
    return await new Promise<SendResult>((resolve) => {
      connection.send({ from, to: [to] }, raw, (error, info) => {
        if (error)
          resolve({ accepted: false, code: (error as { responseCode?: number }).responseCode, error: error.message });
        else resolve({ accepted: true, response: info.response });
      });
    });
  } finally {
    connection.quit();
    connection.close();
  }
}

describeEachDialect('mailto: unsubscribe through the inbound role', (context) => {
  let herald: Herald;
  let role: InboundRole;
  let unconfigured: InboundRole;
  let faulty: InboundRole;
  /** The write of faulty's next mailto: unsubscribe that fails (once), if any. */
  let failAfter: MailUnsubscribeWrite | undefined;
  let port: number;
  let keyRing: KeyRing;
  let deliveryId: number;
  let logs: Array<{ id: number; email: string }>;
  const now = Date.now();

  beforeAll(async () => {
    const config = {
      database: { url: context.url() },
      mta: { bounceDomain: 'bounces.brand.test' },
      inbound: { port: 0 },
      bounce: { siteRulesFile: '/nonexistent/site.yaml' },
    };
    herald = await openHerald({ config: parseConfig({ ...config, tracking }, 'test'), logger: silentLogger });
    role = createInboundRole(herald);
    await role.start();
    port = role.address()!.port;
    // The same database and keys, but no unsubscribeMailDomain: the role must refuse those addresses.
    unconfigured = createInboundRole({
      ...herald,
      config: parseConfig({ ...config, tracking: { keys: tracking.keys } }, 'test'),
    });
    await unconfigured.start();
    // The same role with a write failing on demand, between the steps of one unsubscribe.
    faulty = createInboundRole(herald, {
      afterUnsubscribeWrite(write) {
        if (write !== failAfter) return;
        failAfter = undefined;
        throw new Error(`injected failure after the ${write} write`);
      },
    });
    await faulty.start();
    keyRing = await loadKeyRing(herald.store, herald.config.tracking, now);
    const seeded = await seedTrackedDelivery(herald.store, {
      name: `mailto-${context.dialect}`,
      html: '<p><a href="https://shop.example.com/">Shop</a></p>',
      now,
      recipients: [
        'ann@example.test',
        'bob@example.test',
        'cid@example.test',
        'dee@example.test',
        'eve@example.test',
      ].map((email) => ({ email })),
    });
    deliveryId = seeded.deliveryId;
    logs = seeded.logs;
  });
  afterAll(async () => {
    await role?.stop();
    await unconfigured?.stop();
    await faulty?.stop();
    await herald?.close();
  });

  const issuedAt = () => Math.floor(now / 1_000) - 3_600;
  const address = (token: string, domain = unsubscribeDomain) => `unsubscribe+${token}@${domain}`;
  const unsubscribeToken = (logId: number, at = issuedAt()) =>
    keyRing.sign({ kind: 'unsubscribe', deliveryId, logId, issuedAt: at });

  it('a message to unsubscribe+TOKEN@domain denylists the address (reason unsubscribe) and is counted as an opt-out', async () => {
    const [ann] = logs;
    const result = await send(port, ann!.email, address(unsubscribeToken(ann!.id)));
    expect(result).toMatchObject({ accepted: true });
    expect(result.response).toContain('unsubscribe');
    expect(await getAddress(herald.store, ann!.email)).toMatchObject({ state: 'denylisted', reason: 'unsubscribe' });
    const [entry] = await addressTimeline(herald.store, ann!.email);
    expect(entry).toMatchObject({ source: 'unsubscribe', delivery_id: deliveryId, delivery_log_id: ann!.id });
    const events = await herald.store.db
      .selectFrom('tracking_events')
      .selectAll()
      .where('log_id', '=', ann!.id)
      .execute();
    expect(events.map((e) => [e.kind, Number(e.flags), e.user_agent])).toEqual([['unsubscribe', 0, 'mailto']]);
    await consolidateDelivery(herald.store, deliveryId, 60_000, now);
    const stats = await deliveryTrackingStats(herald.store, deliveryId);
    expect(stats.all.optOuts).toBe(1);
    expect(stats.human.optOuts).toBe(1);
    expect((await inboundCounters(herald.store)).unsubscribe).toBe(1);
  });

  it('refuses, with 550 5.7.1 and no change, every address whose token does not verify as an unsubscribe token', async () => {
    const bob = logs[1]!;
    const good = unsubscribeToken(bob.id);
    const flipped = good.slice(0, 10) + (good[10] === 'A' ? 'B' : 'A') + good.slice(11);
    const refused = [
      address(flipped), // tampered
      address(good.toLowerCase()), // the token is case-sensitive
      address(unsubscribeToken(bob.id, Math.floor((now - 400 * day) / 1_000))), // past tokenTtlDays
      address(
        keyRing.sign({ kind: 'click', deliveryId, logId: bob.id, linkIndex: 0, occurrence: 0, issuedAt: issuedAt() }),
      ), // a click token
      address(good, 'other.test'), // another domain
      address(good, 'bounces.brand.test'), // the bounce domain is not the unsubscribe domain
      `unsubscribe@${unsubscribeDomain}`,
      `unsubscribe+@${unsubscribeDomain}`,
      `postmaster@${unsubscribeDomain}`,
      'victim@gmail.test', // never a relay
    ];
    for (const to of refused) {
      const result = await send(port, bob.email, to);
      expect({ to, ...result }).toMatchObject({ to, accepted: false, code: 550 });
      expect(result.error).toMatch(/5\.7\.1/);
    }
    expect(await getAddress(herald.store, bob.email)).toBeUndefined();
    expect(
      await herald.store.db.selectFrom('tracking_events').selectAll().where('log_id', '=', bob.id).execute(),
    ).toEqual([]);
  });

  it('without tracking.unsubscribeMailDomain the role refuses even a valid unsubscribe address', async () => {
    const cid = logs[2]!;
    const result = await send(unconfigured.address()!.port, cid.email, address(unsubscribeToken(cid.id)));
    expect(result).toMatchObject({ accepted: false, code: 550 });
    expect(await getAddress(herald.store, cid.email)).toBeUndefined();
  });

  // A failure between the writes used to leave the address denylisted with no raw event (so the
  // opt-out was never counted, even after the client's retry) or the reverse; now nothing is applied,
  // the client is told 451 and its retry applies everything once.
  for (const [index, write] of [
    [3, 'address_events'],
    [4, 'tracking_event'],
  ] as const) {
    it(`a failure after the ${write} write applies nothing; the retry applies the unsubscribe once, a replay nothing`, async () => {
      const log = logs[index]!;
      const to = address(unsubscribeToken(log.id));
      const eventsOf = () =>
        herald.store.db.selectFrom('tracking_events').select('kind').where('log_id', '=', log.id).execute();
      const countersBefore = await inboundCounters(herald.store);
      failAfter = write;
      const failed = await send(faulty.address()!.port, log.email, to);
      expect(failed).toMatchObject({ accepted: false, code: 451 });
      expect(failAfter).toBeUndefined();
      expect(await getAddress(herald.store, log.email)).toBeUndefined();
      expect(await addressTimeline(herald.store, log.email)).toEqual([]);
      expect(await eventsOf()).toEqual([]);
      expect(await inboundCounters(herald.store)).toEqual(countersBefore);

      expect(await send(faulty.address()!.port, log.email, to)).toMatchObject({ accepted: true });
      expect(await send(faulty.address()!.port, log.email, to)).toMatchObject({ accepted: true });
      expect(await getAddress(herald.store, log.email)).toMatchObject({ state: 'denylisted', reason: 'unsubscribe' });
      expect(await addressTimeline(herald.store, log.email)).toHaveLength(1);
      expect(await eventsOf()).toEqual([{ kind: 'unsubscribe' }]);
      const counters = await inboundCounters(herald.store);
      expect(counters.unsubscribe).toBe((countersBefore.unsubscribe ?? 0) + 1);
      expect(counters.duplicate).toBe((countersBefore.duplicate ?? 0) + 1);
      expect(counters.received).toBe((countersBefore.received ?? 0) + 2);
    });
  }
});
