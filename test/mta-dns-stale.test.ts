import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { createLogger } from '../src/common/logger.ts';
import { configSchema } from '../src/config/schema.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startDnsServer, type DnsServer } from '../src/sim/dns-server.ts';
import { startSmtpSink, type SmtpSink } from '../src/sim/smtp-sink.ts';
import { createMtaShaping } from '../src/shaping/mta-shaping.ts';
import { readShapingSnapshots } from '../src/shaping/stats-store.ts';
import { formatStatsView, mergeSnapshots } from '../src/shaping/stats-view.ts';
import { describeEachDialect } from './support/databases.ts';

// A domain whose name servers start answering SERVFAIL while its MX hosts still take mail: the MTA
// keeps sending to the last MX hosts and addresses it got, for mta.mxStaleMaxSeconds past their
// TTL, says so in its log and in `herald mx stats`, and defers the domain's messages once that
// time is up.

let sink: SmtpSink;
let dns: DnsServer;
beforeAll(async () => {
  sink = await startSmtpSink({ hostname: 'mx.stale.test', tls: false });
  dns = await startDnsServer({ records: {} });
});
afterAll(async () => {
  await sink.close();
  await dns.close();
});

describeEachDialect('an MTA whose recipient domain’s DNS starts failing', (context) => {
  it('sends to the last known MX host for mxStaleMaxSeconds, logs why, then defers', async () => {
    const { db } = context.store();
    const domain = `stale-${context.dialect}.test`;
    const mxHost = `mx.${domain}`;
    dns.setRecords({ [domain]: { mx: [{ exchange: mxHost, priority: 10 }] }, [mxHost]: { a: [sink.host] } });
    const clock = manualClock(Date.UTC(2026, 2, 1));
    const lines: string[] = [];
    const logger = createLogger({
      destination: new Writable({
        write(chunk: Buffer, _encoding, callback) {
          lines.push(chunk.toString());
          callback();
        },
      }),
    });
    const config = configSchema.parse({
      mta: {
        resolverServers: [dns.address],
        allowPrivateMxAddresses: true,
        pollIntervalMs: 20,
        mxStaleMaxSeconds: 3_600,
      },
    }).mta;
    const shaping = await createMtaShaping({
      config: configSchema.parse({}).shaping,
      mta: config,
      clock,
      logger,
      nodeId: `stale-${context.dialect}`,
      store: context.store(),
    });
    const mta = createMta({
      store: createMtaStore(context.store()),
      nodeId: `stale-${context.dialect}`,
      config,
      clock,
      mxPort: sink.port,
      logger,
      shaping: shaping.mta,
    });
    const send = async (name: string) => {
      const email = `${name}@${domain}`;
      const { deliveryId } = await seedDelivery(db, {
        now: clock.now(),
        recipients: [{ email, data: { first_name: 'Pat' } }],
      });
      await mta.drain();
      return db.selectFrom('delivery_logs').selectAll().where('delivery_id', '=', deliveryId).executeTakeFirstOrThrow();
    };
    await mta.start();
    try {
      expect(await send('before')).toMatchObject({ status: 'sent' });

      dns.setRecords({ [domain]: { servfail: true }, [mxHost]: { servfail: true } });
      // Past the MX answer's 300 s and the address answer's 300 s TTL.
      clock.advance(301_000);
      expect(await send('during')).toMatchObject({ status: 'sent', mx_host: mxHost });
      expect(sink.acceptedCount(`during@${domain}`)).toBe(1);
      const serving = lines.filter((line) => line.includes('mta.dns_stale_serving')).map((line) => JSON.parse(line));
      // The MX host's addresses are asked too once its connection has closed; the domain's MX first.
      expect([serving[0]?.name, serving[0]?.reason]).toEqual([domain, `MX lookup for ${domain} failed: ESERVFAIL`]);
      await shaping.runtime.writeSnapshot();
      const view = mergeSnapshots(await readShapingSnapshots(context.store(), 0), clock.now());
      expect(view.dnsStale?.find((stale) => stale.name === domain)).toEqual({
        name: domain,
        nodeId: `stale-${context.dialect}`,
        reason: `MX lookup for ${domain} failed: ESERVFAIL`,
        since: clock.now(),
        until: clock.now() - 1_000 + 3_600_000,
      });
      expect(formatStatsView(view)).toContain(
        `  ${domain} [stale-${context.dialect}] since ${new Date(clock.now()).toISOString()} until ${new Date(clock.now() - 1_000 + 3_600_000).toISOString()}: MX lookup for ${domain} failed: ESERVFAIL`,
      );

      clock.advance(3_600_000);
      expect(await send('after')).toMatchObject({
        status: 'pending',
        last_reply_text: expect.stringMatching(
          new RegExp(
            `^MX lookup for ${domain} failed: ESERVFAIL; the last good answer, used since .* is past mta\\.mxStaleMaxSeconds$`,
          ),
        ),
      });
      expect(lines.some((line) => line.includes('mta.dns_stale_expired') && line.includes(domain))).toBe(true);
    } finally {
      await mta.stop();
      await shaping.runtime.stop();
    }
  });
});
