import { describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { getDelivery } from '../src/delivery/delivery-store.ts';
import { startDelivery } from '../src/delivery/lifecycle.ts';
import { getOutbound } from '../src/midsourcing/outbound-store.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { sharedMidLoopbackPair } from './support/mid-loopback-pair.ts';

// A delivery the execution instance cannot take, or must not take yet, is refused before anything
// changes: it stays as it was (prepared, start_pending), not in progress "on" an execution instance
// that refuses it or sends it early, with a push the mid-sync-counters workflow would retry forever.

describe('pushes refused before anything changes', () => {
  const clock = manualClock(Date.UTC(2026, 5, 1, 9));
  const pair = sharedMidLoopbackPair(['sqlite', 'sqlite'], clock);

  const seed = (name: string, email = `${name}@accept.test`) =>
    seedPreparedDelivery(pair().marketing.store, {
      name,
      recipients: [{ email, data: { first_name: 'R' } }],
      validitySeconds: 3600,
      clock,
    });
  const push = (deliveryId: number) =>
    pushDelivery({
      store: pair().marketing.store,
      client: pair().client,
      deliveryId,
      partSize: 10,
      inFlight: 1,
      retry: { maxAttempts: 1, baseMs: 1, maxMs: 2 },
      clock,
    });
  const expectUntouched = async (deliveryId: number, state: string) => {
    expect(await getDelivery(pair().marketing.store, deliveryId)).toMatchObject({ state, execution_peer: null });
    expect(await getOutbound(pair().marketing.store, deliveryId)).toBeUndefined();
  };

  it('refuses a delivery with no logs (every recipient excluded, here an invalid address)', async () => {
    const { deliveryId, prepared } = await seed('empty', 'not an address@accept.test');
    expect(prepared).toBe(0);
    await expect(push(deliveryId)).rejects.toMatchObject({ code: 'DELIVERY_NO_TARGET' });
    await expectUntouched(deliveryId, 'prepared');
  });

  it('still says NOT_FOUND for a delivery that does not exist', async () => {
    await expect(push(999_999)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a delivery the execution side cannot take (an HTML body over 2,000,000 characters)', async () => {
    const { deliveryId } = await seed('huge');
    // Inline images make such bodies; nothing on the marketing side bounds an HTML body.
    await pair()
      .marketing.store.db.updateTable('deliveries')
      .set({ html_template: `<p>Hello {{ first_name }}</p><img src="data:image/png;base64,${'A'.repeat(2_000_000)}">` })
      .where('id', '=', deliveryId)
      .execute();
    await expect(push(deliveryId)).rejects.toMatchObject({
      code: 'INPUT_INVALID',
      message: expect.stringContaining('html'),
    });
    await expectUntouched(deliveryId, 'prepared');
  });

  it('refuses a delivery scheduled for later: the execution side would send it at once', async () => {
    const { deliveryId } = await seed('scheduled');
    const at = clock.now() + 2 * 3_600_000;
    await startDelivery(pair().marketing.store, deliveryId, clock.now(), at);
    await expect(push(deliveryId)).rejects.toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringContaining(new Date(at).toISOString()),
    });
    await expectUntouched(deliveryId, 'start_pending');
    // Once due, it goes.
    clock.set(at);
    await expect(push(deliveryId)).resolves.toMatchObject({ parts: 1, remoteState: 'in_progress' });
  });
});
