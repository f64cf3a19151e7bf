import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { transitionDelivery } from '../src/delivery/lifecycle.ts';
import { getOutbound, listParts } from '../src/midsourcing/outbound-store.ts';
import { createPeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { forwardState } from '../src/midsourcing/state-forward.ts';
import { syncAll, syncDeliveryCounters } from '../src/midsourcing/sync.ts';
import type { Fault, ProxiedRequest } from '../src/midsourcing/testing/fault-proxy.ts';
import { seedNumberedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { postgresUnavailable, testDialects } from './support/databases.ts';
import { sharedMidLoopbackPair } from './support/mid-loopback-pair.ts';

// Something on the path answers for the execution instance with an error of its own: a captive
// portal's 403, a load balancer's 404 or 413, a man in the middle on plain HTTP forging the typed
// error body the execution server would send. None of it is signed with the pair's secret, so none
// of it is the execution instance's verdict: the call is retried like a network fault, nothing is
// marked failed, and once the real instance answers again every part arrives exactly once.

const retry = { maxAttempts: 4, baseMs: 1, maxMs: 2 };
const forged = (code: string, status: number): Fault => ({
  kind: 'status',
  status,
  contentType: 'application/problem+json',
  body: JSON.stringify({ error: { code, message: `forged ${code}`, retryable: false } }),
});
const plain = (status: number): Fault => ({ kind: 'status', status });

for (const dialect of testDialects) {
  describe.skipIf(dialect === 'postgres' && postgresUnavailable !== undefined)(
    `unsigned error answers on the path [marketing ${dialect}]`,
    () => {
      const clock = manualClock(Date.UTC(2026, 5, 1, 9));
      const pair = sharedMidLoopbackPair([dialect, 'sqlite'], clock);

      const seed = (name: string, count: number) =>
        seedNumberedDelivery(pair().marketing.store, `${name}-${dialect}`, count, clock);
      const logged: Array<{ msg: string; part?: number; code?: string; retryable?: boolean; error?: string }> = [];
      const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
      const push = (deliveryId: number, client = pair().client) =>
        pushDelivery({
          store: pair().marketing.store,
          client,
          deliveryId,
          partSize: 2,
          inFlight: 1,
          retry,
          clock,
          logger,
        });
      const remoteLogs = (remoteId: number) =>
        pair()
          .execution.store.db.selectFrom('delivery_logs')
          .select(['email'])
          .where('delivery_id', '=', remoteId)
          .orderBy('email')
          .execute();
      /** The plan's fault for the first `times` attempts on a path ending with `suffix`, then pass. */
      const onPath =
        (faults: Record<string, { fault: Fault; times: number }>) =>
        ({ path, attempt }: ProxiedRequest): Fault => {
          const bare = path.split('?')[0]!;
          const key = Object.keys(faults).find((suffix) => bare.endsWith(suffix));
          return key && attempt <= faults[key]!.times ? faults[key]!.fault : { kind: 'pass' };
        };

      it('retries unsigned 4xx answers (plain or forged problem+json) and delivers every part once', async () => {
        const { deliveryId } = await seed('portal', 9);
        logged.length = 0;
        pair().proxy.setPlan(
          onPath({
            '/deliveries': { fault: forged('INVALID_BODY', 400), times: 1 },
            '/parts/1': { fault: plain(403), times: 2 },
            '/parts/2': { fault: forged('BAD_SIGNATURE', 401), times: 1 },
            '/parts/3': { fault: plain(413), times: 1 },
            '/parts/4': { fault: forged('PART_CONFLICT', 409), times: 1 },
            '/parts/5': { fault: plain(404), times: 3 },
            '/finalize': { fault: forged('PARTS_MISSING', 409), times: 1 },
          }),
        );
        const result = await push(deliveryId);
        expect(result).toMatchObject({ parts: 5, recipients: 9, duplicates: 0, remoteState: 'in_progress' });
        const parts = await listParts(pair().marketing.store, deliveryId);
        expect(parts.map((part) => [part.part_number, part.state, part.attempts])).toEqual([
          [1, 'acked', 3],
          [2, 'acked', 2],
          [3, 'acked', 2],
          [4, 'acked', 2],
          [5, 'acked', 4],
        ]);
        // Each failed attempt is logged with the status, and that exec-1 did not sign it.
        const first = (part: number) => logged.find((line) => line.part === part);
        expect(logged.every((line) => line.retryable)).toBe(true);
        expect(first(1)).toMatchObject({
          code: 'HTTP_403',
          error: expect.stringMatching(/HTTP 403.*not signed by exec-1/),
        });
        expect(first(2)).toMatchObject({
          code: 'BAD_SIGNATURE',
          error: expect.stringMatching(
            /forged BAD_SIGNATURE \(HTTP 401, not signed by exec-1: no x-herald-answer-signature; not taken as its verdict, retried\)/,
          ),
        });
        expect(first(3)).toMatchObject({ code: 'HTTP_413' });
        expect(first(4)).toMatchObject({ code: 'ANSWER_NOT_SIGNED', error: expect.stringContaining('HTTP 409') });
        expect(first(5)).toMatchObject({ code: 'HTTP_404' });
        expect(await remoteLogs(result.remoteId)).toHaveLength(9);
        expect((await getOutbound(pair().marketing.store, deliveryId))!.state).toBe('finalized');
      });

      it('retries an answer too large to read: it is cut off before its signature can be checked', async () => {
        const { deliveryId } = await seed('flood', 2);
        logged.length = 0;
        const flood: Fault = { kind: 'status', status: 413, body: 'x'.repeat(1_100_000) };
        pair().proxy.setPlan(onPath({ '/parts/1': { fault: flood, times: 1 } }));
        const result = await push(deliveryId);
        expect(result).toMatchObject({ parts: 1, recipients: 2 });
        expect((await listParts(pair().marketing.store, deliveryId))[0]!.attempts).toBe(2);
        expect(logged[0]).toMatchObject({ code: 'RESPONSE_TOO_LARGE', retryable: true });
      });

      it('gives up a push stopped by unsigned answers as unavailable, parts pending, and resumes it whole', async () => {
        const { deliveryId } = await seed('blocked', 4);
        pair().proxy.setPlan(onPath({ '/parts/2': { fault: forged('INVALID_BODY', 400), times: 1_000 } }));
        await expect(push(deliveryId)).rejects.toMatchObject({
          code: 'MID_REMOTE_UNAVAILABLE',
          message: expect.stringMatching(/part 2 .*HTTP 400.*not signed by exec-1.*gave up after retries/),
        });
        const parts = await listParts(pair().marketing.store, deliveryId);
        expect(parts.map((part) => [part.state, part.attempts])).toEqual([
          ['acked', 1],
          ['pending', retry.maxAttempts],
        ]);
        const outbound = (await getOutbound(pair().marketing.store, deliveryId))!;
        expect(outbound.state).toBe('pushing');
        expect(outbound.last_error).toMatch(/not signed by exec-1/);

        pair().proxy.setPlan(() => ({ kind: 'pass' }));
        const result = await push(deliveryId);
        expect(result).toMatchObject({ parts: 2, recipients: 4 });
        expect(await remoteLogs(result.remoteId)).toHaveLength(4);
      });

      it('keeps a stop queued for retry when an unsigned 403 answers its forward', async () => {
        const { deliveryId } = await seed('stop', 2);
        pair().proxy.setPlan(() => ({ kind: 'pass' }));
        await push(deliveryId);
        await transitionDelivery(pair().marketing.store, deliveryId, 'stopped', clock.now());
        pair().proxy.setPlan(onPath({ '/state': { fault: plain(403), times: 1_000 } }));
        const failed = await forwardState(pair().marketing.store, pair().client, deliveryId, { retry, clock });
        expect(failed).toMatchObject({ kind: 'failed', retryable: true, attempts: retry.maxAttempts });
        pair().proxy.setPlan(() => ({ kind: 'pass' }));
        expect(await forwardState(pair().marketing.store, pair().client, deliveryId, { retry, clock })).toMatchObject({
          kind: 'forwarded',
          remoteState: 'stopped',
        });
      });

      it('a pull pass asks a peer answered for by something else for one delivery only', async () => {
        // Deliveries pushed by the tests above are all waiting for their outcomes from exec-1.
        let asked = 0;
        pair().proxy.setPlan(({ path }) => {
          if (!path.includes('/logs?')) return { kind: 'pass' };
          asked++;
          return plain(403);
        });
        const config = { ...pair().marketingConfig, maxAttempts: 2 };
        const pass = await syncAll(pair().marketing.store, config, 'logs', clock);
        expect(pass.failed.length).toBeGreaterThanOrEqual(3);
        expect(pass.failed[0]!.error).toMatch(/HTTP 403.*not signed by exec-1/);
        expect(pass.failed.slice(1).every((failure) => failure.error.startsWith('skipped: exec-1'))).toBe(true);
        expect(asked).toBe(config.maxAttempts);
        pair().proxy.setPlan(() => ({ kind: 'pass' }));
      });

      it('upgrading marketing first: unsigned answers of an older execution instance stop nothing, and acceptUnsignedAnswers lets the push through, loudly', async () => {
        const { deliveryId } = await seed('upgrade', 3);
        // The execution instance of before answer signing: its answers carry no signature.
        pair().proxy.setPlan(() => ({ kind: 'unsigned' }));
        await expect(push(deliveryId)).rejects.toMatchObject({
          code: 'MID_REMOTE_UNAVAILABLE',
          message: expect.stringContaining(
            'or exec-1 runs a Herald older than answer signing: upgrade it (acceptUnsignedAnswers: true on its midsourcing.peers entry here lets the push through meanwhile)',
          ),
        });
        expect((await getOutbound(pair().marketing.store, deliveryId))!.remote_id).toBeNull();

        logged.length = 0;
        const upgrading = createPeerClient({
          peer: { ...pair().marketingConfig.peers[0]!, acceptUnsignedAnswers: true },
          localName: 'marketing-1',
          timeoutMs: 1_000,
          clock,
          logger,
        });
        try {
          const result = await push(deliveryId, upgrading);
          expect(result).toMatchObject({ parts: 2, recipients: 3, remoteState: 'in_progress' });
          expect(await remoteLogs(result.remoteId)).toHaveLength(3);
          const messages = logged.map((line) => line.msg);
          expect(messages).toEqual([
            expect.stringContaining('midsourcing.peers exec-1: acceptUnsignedAnswers is on'),
            expect.stringContaining('believing an answer of exec-1 that is not signed'),
          ]);
          // exec-1 upgraded: said once, so the operator removes the setting.
          pair().proxy.setPlan(() => ({ kind: 'pass' }));
          const outbound = (await getOutbound(pair().marketing.store, deliveryId))!;
          await syncDeliveryCounters(pair().marketing.store, upgrading, outbound, { retry, clock });
          await syncDeliveryCounters(pair().marketing.store, upgrading, outbound, { retry, clock });
          expect(logged.map((line) => line.msg).slice(2)).toEqual([
            'exec-1 signs its answers: remove acceptUnsignedAnswers from its midsourcing.peers entry',
          ]);
        } finally {
          upgrading.close();
        }
      });
    },
  );
}
