import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { pauseDelivery, resumeDelivery, stopDelivery } from '../src/delivery/lifecycle.ts';
import { getOutbound } from '../src/midsourcing/outbound-store.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { forwardOperatorAction } from '../src/midsourcing/state-forward.ts';
import { outboundStatuses } from '../src/midsourcing/status.ts';
import { syncDeliveryLogs } from '../src/midsourcing/sync.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { getDelivery } from '../src/delivery/delivery-store.ts';
import { listInboundStateChanges } from '../src/midsourcing/inbound-store.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { crossDialectPairs, postgresUnavailable } from './support/databases.ts';
import { openMidLoopbackPair } from './support/mid-loopback-pair.ts';

// An operator pauses, resumes and stops a pushed delivery on the marketing instance; each change
// crosses a faulty loopback link (the first attempt of each is lost after the execution side applied
// it: reset, timeout, gateway 504) to a real execution instance whose MTA sends to the ISP simulator.
// Each change must be applied there exactly once, and nothing may be sent after the stop.

let simulator: Simulator;
beforeAll(async () => {
  // greylist.test defers a first attempt and accepts the next one: those recipients are still
  // pending when the stop arrives, and would be accepted by any later attempt.
  simulator = await startSimulator({ greylistDelayMs: 0 });
});
afterAll(async () => {
  await simulator.close();
});

for (const [marketingDialect, executionDialect] of crossDialectPairs) {
  describe.skipIf(postgresUnavailable !== undefined)(
    `mid-sourcing pause/resume/stop over a faulty link [marketing ${marketingDialect} → execution ${executionDialect}]`,
    () => {
      it('applies each forwarded change once despite lost acknowledgements; nothing is sent after the stop', async () => {
        const clock = manualClock(Date.UTC(2026, 5, 1, 9));
        const pair = await openMidLoopbackPair([marketingDialect, executionDialect], clock);
        const { marketing, execution, marketingConfig, proxy, client } = pair;
        const tag = `state-${marketingDialect}-${executionDialect}`;
        const mta = pair.executionMta(simulator, `exec-${tag}`);
        try {
          const recipients = Array.from({ length: 40 }, (_, i) => ({
            email: `u${i}.${tag}@${i % 4 === 3 ? 'greylist.test' : 'accept.test'}`,
            data: { first_name: `R${i}` },
          }));
          const greylisted = recipients
            .filter((recipient) => recipient.email.endsWith('@greylist.test'))
            .map((recipient) => recipient.email);
          const { deliveryId } = await seedPreparedDelivery(marketing.store, {
            name: tag,
            recipients,
            validitySeconds: 3_600,
            clock,
          });
          const pushed = await pushDelivery({
            store: marketing.store,
            client,
            deliveryId,
            partSize: 10,
            inFlight: 2,
            retry: { maxAttempts: 5, baseMs: 20, maxMs: 200 },
            clock,
          });
          const remoteId = pushed.remoteId;
          expect(pushed.remoteState).toBe('in_progress');

          // The first attempt of each change reaches the execution side, then its answer is lost.
          proxy.setPlan(({ path, attempt }) => {
            if (!path.endsWith('/state')) return { kind: 'pass' };
            if (attempt === 1) return { kind: 'drop-after' };
            if (attempt === 3) return { kind: 'delay', ms: 2_000 };
            if (attempt === 5) return { kind: 'status-after', status: 504 };
            return { kind: 'pass' };
          });
          const remoteState = async () => (await getDelivery(execution.store, remoteId)).state;
          const acceptedSoFar = () =>
            recipients.reduce((sum, recipient) => sum + simulator.acceptedCount(recipient.email), 0);
          const sendRounds = async (rounds: number) => {
            for (let round = 0; round < rounds; round++) {
              await mta.drain();
              clock.advance(2_000);
            }
            await mta.drain();
          };

          // Pause before the execution MTA runs: it sends nothing.
          await pauseDelivery(marketing.store, deliveryId, clock.now());
          const paused = await forwardOperatorAction(marketing.store, marketingConfig, deliveryId, { clock });
          expect(paused).toMatchObject({
            kind: 'forwarded',
            target: 'paused',
            version: 1,
            outcome: 'duplicate',
            remoteState: 'paused',
            attempts: 2,
          });
          expect(await remoteState()).toBe('paused');
          await mta.start();
          await sendRounds(3);
          expect(acceptedSoFar()).toBe(0);

          // Resume (the first answer times out): the accept.test recipients go, greylist.test ones are deferred.
          await resumeDelivery(marketing.store, deliveryId, clock.now());
          const resumed = await forwardOperatorAction(marketing.store, marketingConfig, deliveryId, { clock });
          expect(resumed).toMatchObject({
            kind: 'forwarded',
            target: 'in_progress',
            version: 2,
            outcome: 'duplicate',
            remoteState: 'in_progress',
            attempts: 2,
          });
          await mta.drain();
          expect(acceptedSoFar()).toBe(30);
          const deferred = await execution.store.db
            .selectFrom('delivery_logs')
            .select(['email', 'status', 'attempts'])
            .where('delivery_id', '=', remoteId)
            .where('status', '=', 'pending')
            .execute();
          expect(deferred.map((log) => log.email).sort()).toEqual([...greylisted].sort());
          expect(deferred.every((log) => log.attempts === 1)).toBe(true);

          // Stop (the first answer is a gateway 504): the deferred recipients are cancelled, never retried.
          await stopDelivery(marketing.store, deliveryId, clock.now());
          const stopped = await forwardOperatorAction(marketing.store, marketingConfig, deliveryId, { clock });
          expect(stopped).toMatchObject({
            kind: 'forwarded',
            target: 'stopped',
            version: 3,
            outcome: 'duplicate',
            remoteState: 'stopped',
            attempts: 2,
          });
          await sendRounds(5);
          expect(acceptedSoFar()).toBe(30);
          for (const email of greylisted) expect(simulator.acceptedCount(email)).toBe(0);
          expect(await remoteState()).toBe('stopped');
          const executionLogs = await execution.store.db
            .selectFrom('delivery_logs')
            .select(['email', 'status'])
            .where('delivery_id', '=', remoteId)
            .execute();
          expect(
            executionLogs
              .filter((log) => log.status === 'cancelled')
              .map((log) => log.email)
              .sort(),
          ).toEqual([...greylisted].sort());
          expect(executionLogs.filter((log) => log.status === 'sent')).toHaveLength(30);

          // Exactly once: one record per version, each applied, though each request arrived twice.
          const changes = await listInboundStateChanges(execution.store, remoteId);
          expect(changes.map((change) => [change.version, change.target, change.from_state, change.outcome])).toEqual([
            [1, 'paused', 'in_progress', 'applied'],
            [2, 'in_progress', 'paused', 'applied'],
            [3, 'stopped', 'in_progress', 'applied'],
          ]);
          expect(proxy.injected()).toMatchObject({ 'drop-after': 1, delay: 1, 'status-after': 1 });

          // The marketing side pulls the outcomes back and ends stopped, each log as over there.
          proxy.setPlan(() => ({ kind: 'pass' }));
          const synced = await syncDeliveryLogs(
            marketing.store,
            client,
            (await getOutbound(marketing.store, deliveryId))!,
            { pageSize: 15, retry: { maxAttempts: 3, baseMs: 20, maxMs: 200 }, clock },
          );
          expect(synced).toMatchObject({ complete: true, remoteState: 'stopped' });
          expect(await getDelivery(marketing.store, deliveryId)).toMatchObject({ state: 'stopped' });
          // The pass ended on an empty page whose request acknowledged every change: all may be purged.
          const inbound = await execution.store.db
            .selectFrom('mid_inbound_deliveries')
            .select('read_cursor')
            .where('delivery_id', '=', remoteId)
            .executeTakeFirstOrThrow();
          expect(Number(inbound.read_cursor)).toBe(
            Number((await getOutbound(marketing.store, deliveryId))!.log_cursor),
          );
          const marketingLogs = await marketing.store.db
            .selectFrom('delivery_logs')
            .select(['email', 'status'])
            .where('delivery_id', '=', deliveryId)
            .execute();
          expect(new Map(marketingLogs.map((log) => [log.email, log.status]))).toEqual(
            new Map(executionLogs.map((log) => [log.email, log.status])),
          );

          const [status] = await outboundStatuses(marketing.store, deliveryId);
          expect(status!.stateChange).toMatchObject({
            localState: 'stopped',
            target: 'stopped',
            version: 3,
            ackedVersion: 3,
            reached: true,
            remoteState: 'stopped',
            outcome: 'duplicate',
            attempts: 2,
          });
        } finally {
          await pair.close();
        }
      }, 60_000);

      it('a pause made while the push is unfinished is held over there and applied at finalize: the execution side never starts it', async () => {
        const clock = manualClock(Date.UTC(2026, 5, 1, 9));
        const pair = await openMidLoopbackPair([marketingDialect, executionDialect], clock);
        const { marketing, execution, marketingConfig, proxy, client } = pair;
        try {
          const recipients = Array.from({ length: 12 }, (_, i) => ({
            email: `held${i}.${marketingDialect}@accept.test`,
            data: { first_name: `H${i}` },
          }));
          const { deliveryId } = await seedPreparedDelivery(marketing.store, {
            name: `held-${marketingDialect}`,
            recipients,
            validitySeconds: 3_600,
            clock,
          });
          const retry = { maxAttempts: 2, baseMs: 20, maxMs: 200 };
          // Every part arrives, but finalize never gets through: the push gives up.
          proxy.setPlan(({ path }) => (path.endsWith('/finalize') ? { kind: 'drop-before' } : { kind: 'pass' }));
          await expect(
            pushDelivery({ store: marketing.store, client, deliveryId, partSize: 5, inFlight: 2, retry, clock }),
          ).rejects.toMatchObject({ code: 'MID_REMOTE_UNAVAILABLE' });
          const remoteId = Number((await getOutbound(marketing.store, deliveryId))!.remote_id);

          await pauseDelivery(marketing.store, deliveryId, clock.now());
          expect(await forwardOperatorAction(marketing.store, marketingConfig, deliveryId, { clock })).toMatchObject({
            kind: 'forwarded',
            outcome: 'held',
            remoteState: 'preparing',
          });

          proxy.setPlan(() => ({ kind: 'pass' }));
          const resumed = await pushDelivery({
            store: marketing.store,
            client,
            deliveryId,
            partSize: 5,
            inFlight: 2,
            retry,
            clock,
          });
          expect(resumed).toMatchObject({ remoteId, parts: 3, remoteState: 'paused' });
          expect((await getDelivery(execution.store, remoteId)).state).toBe('paused');
          expect(
            (await listInboundStateChanges(execution.store, remoteId)).map((change) => [
              change.version,
              change.outcome,
            ]),
          ).toEqual([[1, 'applied']]);
          expect(await createMtaStore(execution.store).claimDue('exec', clock.now(), 100, 60_000)).toEqual([]);

          await resumeDelivery(marketing.store, deliveryId, clock.now());
          expect(await forwardOperatorAction(marketing.store, marketingConfig, deliveryId, { clock })).toMatchObject({
            kind: 'forwarded',
            version: 2,
            outcome: 'applied',
            remoteState: 'in_progress',
          });
          expect(await createMtaStore(execution.store).claimDue('exec', clock.now(), 100, 60_000)).toHaveLength(12);
        } finally {
          await pair.close();
        }
      }, 60_000);
    },
  );
}
