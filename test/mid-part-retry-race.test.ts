import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { listParts } from '../src/midsourcing/outbound-store.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import type { Fault } from '../src/midsourcing/testing/fault-proxy.ts';
import { seedNumberedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { postgresUnavailable, testDialects } from './support/databases.ts';
import { openMidLoopbackPair, type MidLoopbackPair } from './support/mid-loopback-pair.ts';

// A part append that times out on the marketing side is sent again; the first copy may still be on
// its way or being stored. Both copies then reach the execution instance, here at the same moment
// (the first held on the way until the retry arrives), or one after the other (stored, then a
// gateway's 408 instead of the answer). Each part is stored once, each recipient has one delivery
// log over there: nothing is sent twice.

for (const dialect of testDialects) {
  describe.skipIf(dialect === 'postgres' && postgresUnavailable !== undefined)(
    `a part sent again after a timeout [execution ${dialect}]`,
    () => {
      const clock = manualClock(Date.UTC(2026, 5, 1, 9));
      let pair: MidLoopbackPair;
      let appended = 0;
      let onAppended = () => {};
      beforeAll(async () => {
        pair = await openMidLoopbackPair(['sqlite', dialect], clock, {
          onPartAppend: () => {
            appended++;
            onAppended();
          },
        });
      });
      afterAll(async () => {
        await pair?.close();
      });

      it('stores a part once when its timed-out copy and its retry arrive together, or the ack is replaced by a 408', async () => {
        const { deliveryId } = await seedNumberedDelivery(pair.marketing.store, 'race', 6, clock);
        let release = () => {};
        const held = new Promise<void>((resolve) => {
          release = resolve;
        });
        pair.proxy.setPlan(({ path, attempt }): Fault => {
          if (path.endsWith('/parts/1')) {
            if (attempt === 1) return { kind: 'hold', until: held };
            // The retry, after the client's timeout: the first copy goes on to the server with it.
            release();
          }
          if (path.endsWith('/parts/2') && attempt === 1) return { kind: 'status-after', status: 408 };
          return { kind: 'pass' };
        });
        const everyAppend = new Promise<void>((resolve) => {
          onAppended = () => {
            if (appended >= 4) resolve();
          };
        });
        const result = await pushDelivery({
          store: pair.marketing.store,
          client: pair.client,
          deliveryId,
          partSize: 3,
          inFlight: 2,
          retry: { maxAttempts: 5, baseMs: 1, maxMs: 2 },
          clock,
        });
        // The held copy of part 1 is answered to nobody: wait until the server has handled it too.
        await everyAppend;
        expect(result).toMatchObject({ parts: 2, recipients: 6, remoteState: 'in_progress' });
        expect(result.duplicates).toBeGreaterThanOrEqual(1);
        expect(result.timeouts).toBeGreaterThanOrEqual(2);
        expect(pair.proxy.injected()).toMatchObject({ hold: 1, 'status-after': 1 });
        expect((await listParts(pair.marketing.store, deliveryId)).map((part) => part.attempts)).toEqual([2, 2]);

        const logs = await pair.execution.store.db
          .selectFrom('delivery_logs')
          .select(['email'])
          .where('delivery_id', '=', result.remoteId)
          .orderBy('email')
          .execute();
        expect(logs.map((log) => log.email)).toEqual(Array.from({ length: 6 }, (_, i) => `race${i}@accept.test`));
        const parts = await pair.execution.store.db
          .selectFrom('mid_inbound_parts')
          .select(['part_number', 'recipients'])
          .where('delivery_id', '=', result.remoteId)
          .orderBy('part_number')
          .execute();
        expect(parts.map((part) => [Number(part.part_number), Number(part.recipients)])).toEqual([
          [1, 3],
          [2, 3],
        ]);
      });
    },
  );
}
