import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { getDelivery } from '../src/delivery/delivery-store.ts';
import { startDelivery } from '../src/delivery/lifecycle.ts';
import { getOutbound } from '../src/midsourcing/outbound-store.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { openMidLoopbackPair, type MidLoopbackPair } from './support/mid-loopback-pair.ts';

// A delivery prepared with every recipient excluded (here: invalid addresses) has no log to push.
// The push refuses it without changing anything: the delivery stays prepared, not in progress "on"
// an execution instance that never hears of it, with a push the mid-sync-counters workflow would
// retry every 10 minutes forever.

describe('pushing a delivery with no logs', () => {
  const clock = manualClock(Date.UTC(2026, 5, 1, 9));
  let pair: MidLoopbackPair;
  beforeAll(async () => {
    pair = await openMidLoopbackPair(['sqlite', 'sqlite'], clock);
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('is refused with nothing changed', async () => {
    const { deliveryId, prepared } = await seedPreparedDelivery(pair.marketing.store, {
      name: 'empty',
      recipients: [{ email: 'not an address@accept.test', data: { first_name: 'E' } }],
      validitySeconds: 3600,
      clock,
    });
    expect(prepared).toBe(0);
    await expect(
      pushDelivery({
        store: pair.marketing.store,
        client: pair.client,
        deliveryId,
        partSize: 10,
        inFlight: 1,
        retry: { maxAttempts: 1, baseMs: 1, maxMs: 2 },
        clock,
      }),
    ).rejects.toMatchObject({ code: 'DELIVERY_NO_TARGET' });
    expect(await getDelivery(pair.marketing.store, deliveryId)).toMatchObject({
      state: 'prepared',
      execution_peer: null,
    });
    expect(await getOutbound(pair.marketing.store, deliveryId)).toBeUndefined();
  });

  it('refuses, with nothing changed, a delivery the execution side cannot take (an HTML body over 2,000,000 characters)', async () => {
    const { deliveryId } = await seedPreparedDelivery(pair.marketing.store, {
      name: 'huge',
      recipients: [{ email: 'huge@accept.test', data: { first_name: 'H' } }],
      validitySeconds: 3600,
      clock,
    });
    // Inline images make such bodies; nothing on the marketing side bounds an HTML body.
    await pair.marketing.store.db
      .updateTable('deliveries')
      .set({ html_template: `<p>Hello {{ first_name }}</p><img src="data:image/png;base64,${'A'.repeat(2_000_000)}">` })
      .where('id', '=', deliveryId)
      .execute();
    const error = await pushDelivery({
      store: pair.marketing.store,
      client: pair.client,
      deliveryId,
      partSize: 10,
      inFlight: 1,
      retry: { maxAttempts: 1, baseMs: 1, maxMs: 2 },
      clock,
    }).then(
      () => undefined,
      (thrown: Error & { code?: string }) => thrown,
    );
    expect(error).toMatchObject({ code: 'INPUT_INVALID', message: expect.stringContaining('html') });
    expect(await getDelivery(pair.marketing.store, deliveryId)).toMatchObject({
      state: 'prepared',
      execution_peer: null,
    });
    expect(await getOutbound(pair.marketing.store, deliveryId)).toBeUndefined();
  });

  it('refuses a delivery scheduled for later: the execution side would send it at once', async () => {
    const { deliveryId } = await seedPreparedDelivery(pair.marketing.store, {
      name: 'scheduled',
      recipients: [{ email: 'scheduled@accept.test', data: { first_name: 'S' } }],
      validitySeconds: 3600,
      clock,
    });
    const at = clock.now() + 2 * 3_600_000;
    await startDelivery(pair.marketing.store, deliveryId, clock.now(), at);
    const push = () =>
      pushDelivery({
        store: pair.marketing.store,
        client: pair.client,
        deliveryId,
        partSize: 10,
        inFlight: 1,
        retry: { maxAttempts: 1, baseMs: 1, maxMs: 2 },
        clock,
      });
    await expect(push()).rejects.toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringContaining(new Date(at).toISOString()),
    });
    expect(await getDelivery(pair.marketing.store, deliveryId)).toMatchObject({
      state: 'start_pending',
      execution_peer: null,
    });
    expect(await getOutbound(pair.marketing.store, deliveryId)).toBeUndefined();
    // Once due, it goes.
    clock.set(at);
    await expect(push()).resolves.toMatchObject({ parts: 1, remoteState: 'in_progress' });
  });
});
