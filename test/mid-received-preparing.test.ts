import { describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { parseConfig } from '../src/config/load.ts';
import { getDelivery } from '../src/delivery/delivery-store.ts';
import { prepareDelivery, preparationStore } from '../src/delivery/preparation.ts';
import { doctorSettings } from '../src/doctor/finding.ts';
import { readDoctorSnapshot } from '../src/doctor/read-snapshot.ts';
import { createExecutionService } from '../src/midsourcing/execution-service.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import type { Fault } from '../src/midsourcing/testing/fault-proxy.ts';
import { seedNumberedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { failStalePreparations } from '../src/workflows/builtins/stale-preparations.ts';
import { postgresUnavailable, testDialects } from './support/databases.ts';
import { sharedMidLoopbackPair } from './support/mid-loopback-pair.ts';
import { midSubmitRequest } from './support/mid-submit.ts';
import { runStep } from './support/run-step.ts';

// A received delivery stays `preparing` on the execution side while its parts arrive. A push that
// takes longer than workflows.stalePreparationMinutes (a big delivery over a slow link, a peer down
// for a while) is not a preparation interrupted there: the execution side's delivery-manager must
// not fail it and delete the logs already received, or the rest of the push is refused for good
// (or, once every part is in, finalize starts a delivery with nothing left to send).

const day = 86_400_000;

for (const dialect of testDialects) {
  describe.skipIf(dialect === 'postgres' && postgresUnavailable !== undefined)(
    `a push slower than workflows.stalePreparationMinutes [execution ${dialect}]`,
    () => {
      const clock = manualClock(Date.UTC(2026, 5, 1, 9));
      const pair = sharedMidLoopbackPair(['sqlite', dialect], clock);

      it('is not failed as an interrupted preparation on the execution side', async () => {
        const { deliveryId } = await seedNumberedDelivery(pair().marketing.store, 'slow', 6, clock);
        pair().proxy.setPlan(
          ({ path, attempt }): Fault =>
            path.endsWith('/parts/2') && attempt === 1 ? { kind: 'status', status: 503 } : { kind: 'pass' },
        );
        const executionConfig = parseConfig({}, 'test');
        const staleRuns: string[] = [];
        const result = await pushDelivery({
          store: pair().marketing.store,
          client: pair().client,
          deliveryId,
          partSize: 3,
          inFlight: 1,
          retry: {
            maxAttempts: 3,
            baseMs: 1,
            maxMs: 2,
            // Part 2 is retried 31 minutes later; meanwhile the execution side's delivery-manager runs.
            sleep: async () => {
              clock.advance((executionConfig.workflows.stalePreparationMinutes + 1) * 60_000);
              staleRuns.push(await runStep(failStalePreparations, pair().execution.store, executionConfig, clock));
            },
          },
          clock,
        });
        expect(staleRuns).toEqual(['0 preparations failed as interrupted, 0 logs deleted']);
        expect(result).toMatchObject({ parts: 2, recipients: 6, remoteState: 'in_progress' });
        const logs = await pair()
          .execution.store.db.selectFrom('delivery_logs')
          .select(['email', 'status'])
          .where('delivery_id', '=', result.remoteId)
          .orderBy('email')
          .execute();
        expect(logs).toEqual(
          Array.from({ length: 6 }, (_, i) => ({ email: `slow${i}@accept.test`, status: 'pending' })),
        );
      });

      it('is failed as stale once its peer sent nothing for it for a week (a push abandoned over there)', async () => {
        const service = createExecutionService(pair().execution.store);
        const submitted = await service.submit('marketing-1', midSubmitRequest(901), clock.now());
        if (!submitted.ok) throw new Error(JSON.stringify(submitted.error));
        const remoteId = submitted.value.remoteId;
        const config = parseConfig({}, 'test');
        const run = () => runStep(failStalePreparations, pair().execution.store, config, clock);
        // Six days on, a part arrives: the push is alive, the week counts from there.
        clock.advance(6 * day);
        const part = await service.appendPart(
          'marketing-1',
          remoteId,
          1,
          '1:k',
          [{ id: 1, email: 'week@accept.test', domain: 'accept.test', data: '{}' }],
          clock.now(),
        );
        expect(part).toMatchObject({ ok: true });
        clock.advance(6 * day);
        expect(await run()).toMatch(/^0 preparations failed/);
        clock.advance(2 * day);
        expect(await run()).toMatch(/^1 preparations failed/);
      });

      it('is refused by `delivery prepare` (which took it over and deleted its received recipients): nothing changes', async () => {
        const service = createExecutionService(pair().execution.store);
        const submitted = await service.submit('marketing-1', midSubmitRequest(902), clock.now());
        if (!submitted.ok) throw new Error(JSON.stringify(submitted.error));
        const remoteId = submitted.value.remoteId;
        const recipient = { id: 1, email: 'kept@accept.test', domain: 'accept.test', data: '{}' };
        expect(await service.appendPart('marketing-1', remoteId, 1, '1:k', [recipient], clock.now())).toMatchObject({
          ok: true,
        });
        // Past the preparation lease: a preparation of its own would be taken over as dead.
        clock.advance(10 * 60_000);
        const preparing = prepareDelivery(preparationStore(pair().execution.store), remoteId, {
          batchSize: 100,
          clock,
          isValidAddress: () => true,
        });
        await expect(preparing).rejects.toMatchObject({
          code: 'INVALID_STATE',
          message: expect.stringContaining('received from the mid-sourcing peer "marketing-1" (its delivery 902)'),
        });
        const delivery = await getDelivery(pair().execution.store, remoteId);
        expect(delivery.state).toBe('preparing');
        const logs = await pair()
          .execution.store.db.selectFrom('delivery_logs')
          .select('email')
          .where('delivery_id', '=', remoteId)
          .execute();
        expect(logs).toEqual([{ email: 'kept@accept.test' }]);
        // The doctor reads where it comes from, and sends the operator there (not to `delivery prepare`).
        const config = parseConfig({}, 'test');
        const snapshot = await readDoctorSnapshot({
          store: pair().execution.store,
          config,
          settings: doctorSettings(config),
          now: clock.now(),
          deliveryId: remoteId,
          skipConfiguration: true,
        });
        expect(snapshot.deliveries.find((d) => d.id === remoteId)?.receivedFrom).toEqual({
          peer: 'marketing-1',
          sourceDeliveryId: 902,
        });
      });

      it('is failed as stale once its peer stopped it before finalize (a stopped push never resumes)', async () => {
        const service = createExecutionService(pair().execution.store);
        const submitted = await service.submit('marketing-1', midSubmitRequest(900), clock.now());
        if (!submitted.ok) throw new Error(JSON.stringify(submitted.error));
        const stop = await service.changeState(
          'marketing-1',
          submitted.value.remoteId,
          { state: 'stopped', version: 1 },
          clock.now(),
        );
        expect(stop).toMatchObject({ ok: true, value: { outcome: 'held' } });
        const config = parseConfig({}, 'test');
        clock.advance((config.workflows.stalePreparationMinutes + 1) * 60_000);
        expect(await runStep(failStalePreparations, pair().execution.store, config, clock)).toMatch(
          /^1 preparations failed/,
        );
      });
    },
  );
}
