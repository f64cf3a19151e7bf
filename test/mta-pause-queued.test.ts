import { expect, it } from 'vitest';
import { defaultVerdict } from '../src/bounce/default-verdict.ts';
import { silentLogger } from '../src/common/logger.ts';
import { configSchema } from '../src/config/schema.ts';
import { pauseDelivery, stopDelivery } from '../src/delivery/lifecycle.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSmtpSink } from '../src/sim/smtp-sink.ts';
import { type DialectContext, describeEachDialect } from './support/databases.ts';
import { waitFor } from './support/wait.ts';

// A pause or a stop acknowledged to the operator holds the messages the MTA already queued, not
// only its next claims. Before, the state was checked when a claim was grouped and then through a
// 10 s cache: on one connection, 400 messages claimed and queued, a stop after the 5th message
// let the rest of the queue go out. Now each message's turn asks again (read at most every
// deliveryStateRefreshMs, 0 here): only the transaction already open finishes.

async function sendThenAct(context: DialectContext, action: 'pause' | 'stop') {
  const domain = `${action}-queued-${context.dialect}.test`;
  const sink = await startSmtpSink({ hostname: `mx.${domain}` });
  const store = context.store();
  const { deliveryId } = await seedDelivery(store.db, {
    now: Date.now(),
    recipients: Array.from({ length: 400 }, (_, i) => ({ email: `person${i}@${domain}`, data: { first_name: 'Pat' } })),
  });
  const mta = createMta({
    store: createMtaStore(store),
    nodeId: `${action}-queued-${context.dialect}`,
    config: configSchema.parse({
      mta: {
        routes: [{ match: domain, host: sink.host, port: sink.port }],
        resolverServers: ['127.0.0.1:9'],
        pollIntervalMs: 20,
        maxConnectionsPerMx: 1,
        bounceDomain: 'bounces.brand.test',
        allowPrivateMxAddresses: true,
      },
    }).mta,
    classify: defaultVerdict,
    logger: silentLogger,
    deliveryStateRefreshMs: 0,
  });
  await mta.start();
  try {
    await waitFor(() => sink.stats().messagesAccepted >= 5, 'five messages accepted');
    await (action === 'pause' ? pauseDelivery : stopDelivery)(store, deliveryId, Date.now());
    const acceptedAtAction = sink.stats().messagesAccepted;
    // Until the MTA holds nothing of the delivery: every queued message handed back.
    await waitFor(async () => {
      const inHand = await store.db
        .selectFrom('delivery_logs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('delivery_id', '=', deliveryId)
        .where('status', '=', 'sending')
        .executeTakeFirstOrThrow();
      return Number(inHand.n) === 0;
    }, 'nothing of the delivery in hand');
    return { acceptedAtAction, acceptedAfter: sink.stats().messagesAccepted - acceptedAtAction };
  } finally {
    await mta.stop();
    await sink.close();
  }
}

describeEachDialect('a pause or a stop holds the messages already queued', (context) => {
  it('pause: at most the transaction open on the one connection finishes', async () => {
    const result = await sendThenAct(context, 'pause');
    expect(result.acceptedAtAction).toBeLessThan(400);
    // One connection: the transaction it had started, and one whose turn began before the pause.
    expect(result.acceptedAfter).toBeLessThanOrEqual(2);
  });

  it('stop: the same', async () => {
    const result = await sendThenAct(context, 'stop');
    expect(result.acceptedAfter).toBeLessThanOrEqual(2);
  });
});
