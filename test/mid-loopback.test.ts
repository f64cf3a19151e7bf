import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { createHeraldMetrics } from '../src/metrics/registry.ts';
import { getOutbound, listParts } from '../src/midsourcing/outbound-store.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { syncDeliveryCounters, syncDeliveryLogs } from '../src/midsourcing/sync.ts';
import type { Fault } from '../src/midsourcing/testing/fault-proxy.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { countDeliveryLogs, getDelivery } from '../src/delivery/delivery-store.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { crossDialectPairs, postgresUnavailable } from './support/databases.ts';
import { openMidLoopbackPair } from './support/mid-loopback-pair.ts';

// Two real instances over loopback HTTP, each with its own database (one SQLite, one PostgreSQL),
// a fault-injecting proxy between them, and the execution instance's real MTA sending to the ISP
// simulator. Every recipient must end with exactly one final status on both sides.

const finalStatuses = ['sent', 'failed', 'ignored', 'cancelled'];

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ greylistDelayMs: 0 });
});
afterAll(async () => {
  await simulator.close();
});

for (const [marketingDialect, executionDialect] of crossDialectPairs) {
  describe.skipIf(postgresUnavailable !== undefined)(
    `mid-sourcing over a faulty loopback link [marketing ${marketingDialect} → execution ${executionDialect}]`,
    () => {
      it('pushes through timeouts, resets, 408/503/504 and a restart; every recipient ends once, logs and counters agree', async () => {
        const clock = manualClock(Date.UTC(2026, 5, 1, 9));
        // Each side's part metrics, in a registry of its own, as herald start's processes have.
        const marketingMetrics = createHeraldMetrics();
        const executionMetrics = createHeraldMetrics();
        const pair = await openMidLoopbackPair([marketingDialect, executionDialect], clock, {
          onPartAppend: (seconds, outcome) => executionMetrics.observePartAppend('execution', seconds, outcome),
        });
        const { marketing, execution, proxy, client } = pair;
        const tag = `${marketingDialect}-${executionDialect}`;
        const mta = pair.executionMta(simulator, `exec-${tag}`);
        let restarting: Promise<void> = Promise.resolve();
        try {
          const recipients = Array.from({ length: 200 }, (_, i) => {
            const domain =
              i % 10 === 7
                ? 'unknown-users.test'
                : i % 10 === 9 && i < 40
                  ? 'full.test'
                  : i % 10 === 6
                    ? 'gmail.test'
                    : 'accept.test';
            const local =
              domain === 'unknown-users.test' ? `unknown${i}` : domain === 'full.test' ? `full${i}` : `user${i}`;
            return { email: `${local}.${tag}@${domain}`, data: { first_name: `R${i}` } };
          });
          const { deliveryId, prepared } = await seedPreparedDelivery(marketing.store, {
            name: `mid-${tag}`,
            recipients,
            validitySeconds: 5,
            clock,
          });
          expect(prepared).toBe(200);

          const plans: Record<string, (attempt: number) => Fault> = {
            'POST /mid/v1/deliveries': (n) => (n === 1 ? { kind: 'status', status: 502 } : { kind: 'pass' }),
            'parts/2': (n) => (n === 1 ? { kind: 'drop-after' } : { kind: 'pass' }),
            'parts/3': (n) => (n === 1 ? { kind: 'delay', ms: 2_000 } : { kind: 'pass' }),
            'parts/4': (n) => (n === 1 ? { kind: 'status', status: 408 } : { kind: 'pass' }),
            'parts/5': (n) => (n === 1 ? { kind: 'drop-before' } : { kind: 'pass' }),
            'parts/6': (n) => (n === 1 ? { kind: 'status-after', status: 504 } : { kind: 'pass' }),
            'parts/8': (n) => (n <= 2 ? { kind: 'status', status: 503 } : { kind: 'pass' }),
            finalize: (n) => (n === 1 ? { kind: 'drop-after' } : { kind: 'pass' }),
            logs: (n) => (n === 1 ? { kind: 'drop-after' } : n === 2 ? { kind: 'delay', ms: 2_000 } : { kind: 'pass' }),
            counters: (n) => (n === 1 ? { kind: 'status', status: 408 } : { kind: 'pass' }),
          };
          proxy.setPlan(({ method, path, attempt }) => {
            const bare = path.split('?')[0]!;
            if (bare.endsWith('/parts/7') && attempt === 1) {
              // The execution instance restarts (same port, same database) while parts are in flight.
              restarting = pair.restartExecutionServer();
              return { kind: 'drop-before' };
            }
            const key = Object.keys(plans).find((k) =>
              k.startsWith('POST ') ? `${method} ${bare}` === k : bare.endsWith(`/${k}`),
            );
            return key ? plans[key]!(attempt) : { kind: 'pass' };
          });

          const retry = { maxAttempts: 12, baseMs: 20, maxMs: 200 };
          await mta.start();
          const pushed = await pushDelivery({
            store: marketing.store,
            client,
            deliveryId,
            partSize: 20,
            inFlight: 3,
            retry,
            clock,
            onPartAttempt: (seconds, outcome) => marketingMetrics.observePartAppend('marketing', seconds, outcome),
          });
          await restarting;
          expect(pushed).toMatchObject({ parts: 10, recipients: 200, remoteState: 'in_progress' });
          // drop-after (part 2) and delay (part 3) reached the server before part 7 restarts it: their retries are
          // acknowledged duplicates. Part 6's status-after may be in flight during the restart (its first attempt then
          // never commits), so it is not counted on.
          expect(pushed.duplicates).toBeGreaterThanOrEqual(2);
          expect(pushed.timeouts).toBeGreaterThanOrEqual(2);
          const parts = await listParts(marketing.store, deliveryId);
          expect(
            parts.every((part) => part.state === 'acked' && part.build_ms !== null && part.latency_ms !== null),
          ).toBe(true);
          expect(parts.find((part) => part.part_number === 8)?.attempts).toBeGreaterThanOrEqual(3);
          // /metrics: every attempt timed on the marketing side, its timeouts counted; every append received timed.
          const sample = async (metrics: ReturnType<typeof createHeraldMetrics>, name: string, labels: string) => {
            const line = (await metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
            return line === undefined ? 0 : Number(line.split(' ').pop());
          };
          expect(await sample(marketingMetrics, 'herald_mid_part_timeouts_total', 'side="marketing"')).toBe(
            pushed.timeouts,
          );
          expect(
            await sample(marketingMetrics, 'herald_mid_part_append_seconds_count', 'side="marketing",outcome="ok"'),
          ).toBe(10);
          expect(
            await sample(executionMetrics, 'herald_mid_part_append_seconds_count', 'side="execution",outcome="ok"'),
          ).toBeGreaterThanOrEqual(10);
          // The marketing MTA never sends a pushed delivery: it is in progress here, sent over there.
          expect(await getDelivery(marketing.store, deliveryId)).toMatchObject({ state: 'in_progress' });
          const localClaims = await createMtaStore(marketing.store).claimDue(
            'marketing-mta',
            clock.now(),
            1_000,
            60_000,
          );
          expect(localClaims).toEqual([]);

          const remoteId = pushed.remoteId;
          for (
            let round = 0;
            round < 30 && (await getDelivery(execution.store, remoteId)).state === 'in_progress';
            round++
          ) {
            await mta.drain();
            clock.advance(1_000);
          }
          expect((await getDelivery(execution.store, remoteId)).state).toBe('finished');

          const outbound = (await getOutbound(marketing.store, deliveryId))!;
          const synced = await syncDeliveryLogs(marketing.store, client, outbound, { pageSize: 37, retry, clock });
          expect(synced).toMatchObject({ complete: true, remoteState: 'finished' });
          expect(synced.pages).toBeGreaterThan(1);
          const counters = await syncDeliveryCounters(
            marketing.store,
            client,
            (await getOutbound(marketing.store, deliveryId))!,
            { retry, clock },
          );

          const marketingLogs = await marketing.store.db
            .selectFrom('delivery_logs')
            .selectAll()
            .where('delivery_id', '=', deliveryId)
            .execute();
          const executionLogs = await execution.store.db
            .selectFrom('delivery_logs')
            .select(['email', 'status', 'attempts', 'failure_reason', 'last_reply_code', 'source_log_id'])
            .where('delivery_id', '=', remoteId)
            .execute();
          expect(marketingLogs).toHaveLength(200);
          expect(executionLogs).toHaveLength(200);
          expect(new Set(executionLogs.map((log) => Number(log.source_log_id))).size).toBe(200);
          const bySource = new Map(executionLogs.map((log) => [Number(log.source_log_id), log]));
          for (const log of marketingLogs) {
            expect(finalStatuses).toContain(log.status);
            const remote = bySource.get(Number(log.id))!;
            expect({
              email: remote.email,
              status: remote.status,
              attempts: remote.attempts,
              reason: remote.failure_reason,
              code: remote.last_reply_code,
            }).toEqual({
              email: log.email,
              status: log.status,
              attempts: log.attempts,
              reason: log.failure_reason,
              code: log.last_reply_code,
            });
            // Exactly once at the ISP: a sent recipient was accepted once, a failed one never.
            expect(simulator.acceptedCount(log.email)).toBe(log.status === 'sent' ? 1 : 0);
          }
          const local = await countDeliveryLogs(marketing.store, deliveryId);
          expect(local.byStatus.sent).toBe(176);
          expect(local.byStatus.failed).toBe(24);
          expect(counters).toMatchObject({
            state: 'finished',
            total: 200,
            sent: local.byStatus.sent,
            failed: local.byStatus.failed,
            pending: 0,
          });
          expect(await getDelivery(marketing.store, deliveryId)).toMatchObject({ state: 'finished' });
          expect(proxy.injected()).toMatchObject({ 'drop-after': 3, 'drop-before': 2, 'status-after': 1, delay: 2 });
        } finally {
          await restarting.catch(() => {});
          await pair.close();
        }
      }, 60_000);
    },
  );
}
