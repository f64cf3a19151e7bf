import { describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { parseConfig } from '../src/config/load.ts';
import { listParts } from '../src/midsourcing/outbound-store.ts';
import { outboundStatuses } from '../src/midsourcing/status.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import type { Fault } from '../src/midsourcing/testing/fault-proxy.ts';
import { seedNumberedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { midSyncCountersWorkflow } from '../src/midsourcing/workflows.ts';
import { sharedMidLoopbackPair } from './support/mid-loopback-pair.ts';
import { runStep } from './support/run-step.ts';

// A push still running (its parts retried over a slow or flaky link for longer than the 5 minutes
// after which the mid-sync-counters workflow takes a push for stalled) is not resumed a second time
// beside itself: every attempt says the push is alive.

describe('a long push retrying its parts', () => {
  const clock = manualClock(Date.UTC(2026, 5, 1, 9));
  const pair = sharedMidLoopbackPair(['sqlite', 'sqlite'], clock);

  it('is not taken for stalled by the mid-sync-counters workflow while it retries', async () => {
    const { deliveryId } = await seedNumberedDelivery(pair().marketing.store, 'live', 6, clock);
    // Part 2's first two attempts meet a gateway's 503: retried, with 4 minutes between attempts.
    pair().proxy.setPlan(
      ({ path, attempt }): Fault =>
        path.endsWith('/parts/2') && attempt <= 2 ? { kind: 'status', status: 503 } : { kind: 'pass' },
    );
    const resumeStep = midSyncCountersWorkflow.steps.find((step) => step.name === 'resume-pushes')!;
    const config = parseConfig({ midsourcing: { ...pair().marketingConfig, maxAttempts: 1 } }, 'test');
    const workflowRuns: string[] = [];
    const result = await pushDelivery({
      store: pair().marketing.store,
      client: pair().client,
      deliveryId,
      partSize: 3,
      inFlight: 1,
      retry: {
        maxAttempts: 5,
        baseMs: 1,
        maxMs: 2,
        // The push waits 4 minutes before each retry; meanwhile the workflow runs, as it does every 10 minutes.
        sleep: async () => {
          clock.advance(4 * 60_000);
          workflowRuns.push(await runStep(resumeStep, pair().marketing.store, config, clock));
        },
      },
      clock,
    });
    expect(result).toMatchObject({ parts: 2, recipients: 6, duplicates: 0 });
    expect(workflowRuns).toEqual(['0/0 stalled pushes resumed', '0/0 stalled pushes resumed']);
    expect((await listParts(pair().marketing.store, deliveryId)).map((part) => part.attempts)).toEqual([1, 3]);
  });

  it("shows the resumed push's own failures, not the give-up of the push before", async () => {
    const { deliveryId } = await seedNumberedDelivery(pair().marketing.store, 'again', 6, clock);
    // The first push meets 503s and gives up; the resumed one meets a 504 once, then gets through.
    pair().proxy.setPlan(({ path, attempt }): Fault => {
      if (!path.endsWith('/parts/1')) return { kind: 'pass' };
      if (attempt <= 2) return { kind: 'status', status: 503 };
      return attempt === 3 ? { kind: 'status', status: 504 } : { kind: 'pass' };
    });
    const push = (sleep?: () => Promise<void>) =>
      pushDelivery({
        store: pair().marketing.store,
        client: pair().client,
        deliveryId,
        partSize: 3,
        inFlight: 1,
        retry: { maxAttempts: 2, baseMs: 1, maxMs: 2, ...(sleep && { sleep }) },
        clock,
      });
    await expect(push()).rejects.toMatchObject({ code: 'MID_REMOTE_UNAVAILABLE' });
    const [gaveUp] = await outboundStatuses(pair().marketing.store, deliveryId);
    expect(gaveUp!.lastError).toContain('gave up after retries; push again to resume');

    let whileRetrying: string | null = null;
    await push(async () => {
      clock.advance(1_000);
      whileRetrying = (await outboundStatuses(pair().marketing.store, deliveryId))[0]!.lastError;
    });
    expect(whileRetrying).toContain('HTTP_504');
    expect(whileRetrying).not.toContain('gave up');
  });
});
