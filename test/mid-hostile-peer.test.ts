import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { getOutbound } from '../src/midsourcing/outbound-store.ts';
import { signAnswer } from '../src/midsourcing/signing.ts';
import { midHeaders } from '../src/midsourcing/wire.ts';
import { createPeerClient, type PeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { syncDeliveryCounters, syncDeliveryLogs } from '../src/midsourcing/sync.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { postgresUnavailable, testDialects } from './support/databases.ts';
import { openMidLoopbackPair, type MidLoopbackPair } from './support/mid-loopback-pair.ts';

// The marketing instance as the victim: a delivery is pushed to a real execution instance, then its
// logs and counters are pulled from a hostile (or broken) server answering in its place. It holds
// the peer's secret (a compromised or broken execution instance) and signs its answers, so they pass
// the answer signature (an unsigned one is refused before: mid-forged-answer.test.ts). Nothing it
// says may be stored unless it is what was asked for, and it is never read without bound.

const secret = 'loopback-shared-secret-0123456789';
const retry = { maxAttempts: 2, baseMs: 1, maxMs: 2 };

type Answer = (request: IncomingMessage, response: ServerResponse) => void;

const change = (id: number, seq: number, extra: Record<string, unknown> = {}) => ({
  seq,
  id,
  status: 'sent',
  attempts: 1,
  replyCode: 250,
  enhancedStatus: '2.0.0',
  replyText: 'ok',
  failureType: null,
  failureReason: null,
  failureCategory: null,
  mxHost: 'mx.accept.test',
  sentAt: 1,
  updatedAt: 1,
  ...extra,
});

for (const dialect of testDialects) {
  describe.skipIf(dialect === 'postgres' && postgresUnavailable !== undefined)(
    `a hostile execution instance answering the marketing side [marketing ${dialect}]`,
    () => {
      const clock = manualClock(Date.UTC(2026, 5, 1, 9));
      let pair: MidLoopbackPair;
      let hostile: Server;
      let client: PeerClient;
      let answer: Answer = (_request, response) => response.end();
      let pushedId: number;
      let otherId: number;
      let pushedLogIds: number[];
      let otherLogId: number;

      beforeAll(async () => {
        pair = await openMidLoopbackPair([dialect, 'sqlite'], clock);
        const store = pair.marketing.store;
        const pushed = await seedPreparedDelivery(store, {
          name: `victim-${dialect}`,
          recipients: [0, 1, 2].map((i) => ({ email: `user${i}@accept.test`, data: { first_name: `R${i}` } })),
          validitySeconds: 3600,
          clock,
        });
        const other = await seedPreparedDelivery(store, {
          name: `bystander-${dialect}`,
          recipients: [{ email: 'other@accept.test', data: { first_name: 'O' } }],
          validitySeconds: 3600,
          clock,
        });
        pushedId = pushed.deliveryId;
        otherId = other.deliveryId;
        await pushDelivery({
          store,
          client: pair.client,
          deliveryId: pushedId,
          partSize: 10,
          inFlight: 1,
          retry,
          clock,
        });
        const logs = await store.db.selectFrom('delivery_logs').select(['id', 'delivery_id']).orderBy('id').execute();
        pushedLogIds = logs.filter((log) => Number(log.delivery_id) === pushedId).map((log) => Number(log.id));
        otherLogId = Number(logs.find((log) => Number(log.delivery_id) === otherId)!.id);
        hostile = createServer((request, response) => answer(request, response));
        await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
        client = createPeerClient({
          peer: { name: 'exec-1', url: `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`, secret },
          localName: 'marketing-1',
          timeoutMs: 5_000,
          clock,
        });
      });
      afterAll(async () => {
        client?.close();
        hostile?.closeAllConnections();
        await new Promise<void>((resolve) => (hostile ? hostile.close(() => resolve()) : resolve()));
        await pair?.close();
      });

      const signature = (request: IncomingMessage, status: number, body: string) => ({
        [midHeaders.answerSignature]: signAnswer({
          secret,
          peer: 'marketing-1',
          method: request.method!,
          path: request.url!,
          nonce: String(request.headers[midHeaders.nonce]),
          status,
          body,
        }),
      });
      const json = (body: unknown): Answer => {
        const text = JSON.stringify(body);
        return (request, response) => {
          response.writeHead(200, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(text),
            ...signature(request, 200, text),
          });
          response.end(text);
        };
      };
      // A logs answer once: a request from its nextCursor on gets an empty, caught-up page.
      const page = (body: { nextCursor: unknown; state: string } & Record<string, unknown>): Answer => {
        return (request, response) => {
          const cursor = Number(new URL(request.url!, 'http://x').searchParams.get('cursor'));
          const next = typeof body.nextCursor === 'number' ? body.nextCursor : Number.POSITIVE_INFINITY;
          json(cursor < next ? body : { changes: [], nextCursor: cursor, caughtUp: true, state: body.state })(
            request,
            response,
          );
        };
      };
      const logsOf = (deliveryId: number) =>
        pair.marketing.store.db
          .selectFrom('delivery_logs')
          .select(['id', 'status', 'attempts', 'failure_reason'])
          .where('delivery_id', '=', deliveryId)
          .orderBy('id')
          .execute();
      const pull = async () => {
        const outbound = (await getOutbound(pair.marketing.store, pushedId))!;
        return syncDeliveryLogs(pair.marketing.store, client, outbound, { pageSize: 100, retry, clock, maxPages: 3 });
      };

      it('refuses a logs page far beyond the limit asked for before buffering it whole; nothing is applied', async () => {
        // 200,000 rows (~40 MB) answering a request for 100: read up to the bound of a 100-row page, then cut.
        const row = JSON.stringify(change(pushedLogIds[0]!, 1));
        let requests = 0;
        answer = (_request, response) => {
          requests++;
          response.writeHead(200, { 'content-type': 'application/json' });
          response.write('{"changes":[');
          let written = 0;
          const pump = () => {
            while (written < 200) {
              const chunk = `${written > 0 ? ',' : ''}${Array(1_000).fill(row).join(',')}`;
              written++;
              if (!response.write(chunk)) return void response.once('drain', pump);
            }
            response.end('],"nextCursor":1,"caughtUp":true,"state":"finished"}');
          };
          response.on('error', () => {});
          pump();
        };
        const before = await logsOf(pushedId);
        await expect(pull()).rejects.toThrow(/pulling logs of delivery \d+ from exec-1: RESPONSE_TOO_LARGE/);
        // Cut off before its signature could be checked, so retried (maxAttempts 2), never buffered whole.
        expect(requests).toBe(2);
        expect(await logsOf(pushedId)).toEqual(before);
        const outbound = (await getOutbound(pair.marketing.store, pushedId))!;
        expect(Number(outbound.log_cursor)).toBe(0);
        expect(outbound.last_error).toMatch(/exec-1: RESPONSE_TOO_LARGE/);
      });

      it('refuses a page with more changes than asked, an unknown status, a negative counter or a cursor moving back', async () => {
        const pages: Array<[unknown, RegExp]> = [
          [
            {
              changes: Array.from({ length: 101 }, (_, i) => change(pushedLogIds[i % 3]!, i + 1)),
              nextCursor: 101,
              caughtUp: true,
              state: 'finished',
            },
            /101 changes for a page of at most 100/,
          ],
          [
            { changes: [change(pushedLogIds[0]!, 1, { status: 'bogus' })], nextCursor: 1, caughtUp: true, state: 'x' },
            /changes\.0\.status/,
          ],
          [
            {
              changes: [change(pushedLogIds[0]!, 1, { attempts: -7 })],
              nextCursor: 1,
              caughtUp: true,
              state: 'finished',
            },
            /changes\.0\.attempts/,
          ],
          [
            {
              changes: [change(pushedLogIds[0]!, 1, { failureReason: '\u001b[2Jred' })],
              nextCursor: 1,
              caughtUp: true,
              state: 'finished',
            },
            /changes\.0\.failureReason/,
          ],
          [{ changes: [], nextCursor: 'abc', caughtUp: true, state: 'in_progress' }, /nextCursor/],
          [
            { changes: [change(pushedLogIds[0]!, 7)], nextCursor: 5, caughtUp: true, state: 'finished' },
            /out of order/,
          ],
        ];
        for (const [body, reason] of pages) {
          answer = json(body);
          const before = await logsOf(pushedId);
          await expect(pull()).rejects.toThrow(reason);
          expect(await logsOf(pushedId)).toEqual(before);
          expect(Number((await getOutbound(pair.marketing.store, pushedId))!.log_cursor)).toBe(0);
        }
        // A valid page moves the cursor; then a page going back below it is refused.
        answer = page({ changes: [change(pushedLogIds[1]!, 4)], nextCursor: 4, caughtUp: true, state: 'in_progress' });
        await pull();
        expect(Number((await getOutbound(pair.marketing.store, pushedId))!.log_cursor)).toBe(4);
        answer = json({
          changes: [change(pushedLogIds[1]!, 2, { status: 'pending' })],
          nextCursor: 2,
          caughtUp: true,
          state: 'in_progress',
        });
        await expect(pull()).rejects.toThrow(/nextCursor 2 is before the cursor sent \(4\)/);
        expect((await logsOf(pushedId))[1]!.status).toBe('sent');
      });

      it("never writes another delivery's log, whatever id a change names", async () => {
        answer = page({
          changes: [change(otherLogId, 5, { status: 'failed', failureType: 'hard', failureReason: 'user_unknown' })],
          nextCursor: 5,
          caughtUp: true,
          state: 'in_progress',
        });
        await pull();
        expect((await logsOf(otherId))[0]).toMatchObject({ status: 'pending', failure_reason: null });
      });

      it('refuses counters that are negative, not numbers or keyed by terminal escapes; the last good ones stay', async () => {
        const good = {
          state: 'in_progress',
          total: 3,
          pending: 1,
          sent: 2,
          failed: 0,
          ignored: 0,
          cancelled: 0,
          retried: 0,
          byReason: {},
          updatedAt: 1,
        };
        answer = json(good);
        const outbound = () => getOutbound(pair.marketing.store, pushedId).then((row) => row!);
        await syncDeliveryCounters(pair.marketing.store, client, await outbound(), { retry, clock });
        for (const bad of [{ total: -5 }, { sent: 'lots' }, { pending: 1e300 }, { byReason: { '\u001b[2J': 3 } }]) {
          answer = json({ ...good, ...bad });
          await expect(
            syncDeliveryCounters(pair.marketing.store, client, await outbound(), { retry, clock }),
          ).rejects.toThrow(/INVALID_RESPONSE: the answer is not a valid counters answer/);
          expect(JSON.parse((await outbound()).counters!)).toEqual(good);
        }
      });

      it("keeps terminal escapes of the peer's error texts out of the stored last error", async () => {
        const escapes = '\u001b]0;pwned\u0007\u001b[2J\rdelivery 1 finished';
        for (const [status, body] of [
          [409, JSON.stringify({ error: { code: 'PART_CONFLICT', message: escapes, retryable: false } })],
          [409, JSON.stringify({ error: { code: `X${escapes}`, message: 'm', retryable: false } })],
          [418, `<html>${escapes}</html>`],
        ] as const) {
          answer = (request, response) => {
            response.writeHead(status, { 'content-type': 'text/html', ...signature(request, status, body) });
            response.end(body);
          };
          await expect(pull()).rejects.toThrow(/exec-1/);
          const lastError = (await getOutbound(pair.marketing.store, pushedId))!.last_error!;
          expect(lastError).toMatch(
            /pulling logs of delivery \d+ from exec-1: (PART_CONFLICT|INVALID_RESPONSE|HTTP_418)/,
          );
          expect(lastError).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
        }
      });

      it('refuses a submit answer whose remote id is not a positive integer', async () => {
        for (const remoteId of ['../../1', -1, 1.5]) {
          answer = json({ remoteId, state: 'receiving', partsReceived: 0 });
          const outcome = await client.submit({
            marketingDeliveryId: otherId,
            name: 'x',
            fromAddress: 'news@brand.test',
            fromName: null,
            replyTo: null,
            subject: 's',
            html: null,
            text: 't',
            validitySeconds: 60,
            affinity: null,
            parts: 1,
            recipients: 1,
          });
          expect(outcome).toMatchObject({ ok: false, retryable: false, code: 'INVALID_RESPONSE' });
        }
      });
    },
  );
}
