import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { getDelivery } from '../src/delivery/delivery-store.ts';
import { transitionDelivery } from '../src/delivery/lifecycle.ts';
import { getOutbound, listParts } from '../src/midsourcing/outbound-store.ts';
import { createPeerClient, type PeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { signAnswer } from '../src/midsourcing/signing.ts';
import { forwardState } from '../src/midsourcing/state-forward.ts';
import { syncDeliveryCounters, syncDeliveryLogs } from '../src/midsourcing/sync.ts';
import { seedNumberedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { midHeaders } from '../src/midsourcing/wire.ts';
import { getAddress } from '../src/quarantine/quarantine-store.ts';
import { postgresUnavailable, testDialects } from './support/databases.ts';
import { openMidLoopbackPair, type MidLoopbackPair } from './support/mid-loopback-pair.ts';

// Something else answering on the execution instance's url: a man in the middle on plain HTTP, a
// proxy answering for a dead backend, another service behind a wrong url. It passes what it does not
// forge on to the real execution instance and answers the rest itself, with plausible 200 bodies.
// The marketing side believes only answers signed with the peer's secret: nothing forged is marked
// pushed, finalized, acknowledged or recorded as an outcome.

const secret = 'loopback-shared-secret-0123456789';
const retry = { maxAttempts: 2, baseMs: 1, maxMs: 2 };
const notSigned = /ANSWER_NOT_SIGNED: the answer is not signed by midsourcing\.peers exec-1/;

/** What the impostor answers itself for a request, or undefined to pass it on to the real instance. */
type Forge = (request: IncomingMessage) => unknown;

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

async function startImpostor(
  upstream: URL,
  forge: () => Forge,
  /** When set, the forged answers carry a signature made with this secret (not the pair's). */
  forgerSecret: () => string | undefined,
): Promise<{ server: Server; url: string }> {
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    const forged = forge()(request);
    if (forged !== undefined) {
      const text = JSON.stringify(forged);
      const secret = forgerSecret();
      const signature = secret && {
        [midHeaders.answerSignature]: signAnswer({
          secret,
          peer: 'marketing-1',
          method: request.method!,
          path: request.url!,
          nonce: String(request.headers[midHeaders.nonce]),
          status: 200,
          body: text,
        }),
      };
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...signature,
      });
      response.end(text);
      return;
    }
    const relayed = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: request.method,
        path: request.url,
        headers: { ...request.headers, host: upstream.host },
      },
      async (answer) => {
        const answerBody = await readBody(answer);
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        response.end(answerBody);
      },
    );
    relayed.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const isPart = (request: IncomingMessage) => /\/parts\/\d+$/.test(request.url ?? '');
const partNumber = (request: IncomingMessage) => Number(/\/parts\/(\d+)$/.exec(request.url ?? '')?.[1]);

for (const dialect of testDialects) {
  describe.skipIf(dialect === 'postgres' && postgresUnavailable !== undefined)(
    `answers not signed by the execution instance [marketing ${dialect}]`,
    () => {
      const clock = manualClock(Date.UTC(2026, 5, 1, 9));
      let pair: MidLoopbackPair;
      let impostor: { server: Server; url: string };
      let client: PeerClient;
      let forge: Forge = () => undefined;
      let forgerSecret: string | undefined;

      beforeAll(async () => {
        pair = await openMidLoopbackPair([dialect, 'sqlite'], clock);
        impostor = await startImpostor(
          new URL(pair.server().url),
          () => forge,
          () => forgerSecret,
        );
        client = createPeerClient({
          peer: { name: 'exec-1', url: impostor.url, secret },
          localName: 'marketing-1',
          timeoutMs: 5_000,
          clock,
        });
      });
      afterAll(async () => {
        client?.close();
        impostor?.server.closeAllConnections();
        await new Promise<void>((resolve) => (impostor ? impostor.server.close(() => resolve()) : resolve()));
        await pair?.close();
      });

      const seed = (name: string, count: number) =>
        seedNumberedDelivery(pair.marketing.store, `${name}-${dialect}`, count, clock);
      const push = (deliveryId: number) =>
        pushDelivery({ store: pair.marketing.store, client, deliveryId, partSize: 2, inFlight: 1, retry, clock });

      it('refuses a forged acknowledgement of a part: the part is not marked pushed and the push is not finalized', async () => {
        const { deliveryId } = await seed('acked-by-nobody', 3);
        let forgedParts = 0;
        forge = (request) => {
          if (!isPart(request)) return undefined;
          forgedParts++;
          return { part: partNumber(request), recipients: 2, duplicate: false };
        };
        await expect(push(deliveryId)).rejects.toThrow(notSigned);
        // Retried like a network failure (maxAttempts 2), then the push stopped on the first part.
        expect(forgedParts).toBe(2);
        const parts = await listParts(pair.marketing.store, deliveryId);
        expect(parts.map((part) => part.state)).toEqual(['pending', 'pending']);
        expect(parts[0]!.last_error).toMatch(notSigned);
        const outbound = (await getOutbound(pair.marketing.store, deliveryId))!;
        expect(outbound.state).toBe('pushing');
        expect(outbound.last_error).toMatch(/wrong url, a proxy answering, or a different secret/);

        // The real instance answering again: the same push resumes and completes end to end.
        forge = () => undefined;
        const result = await push(deliveryId);
        expect(result).toMatchObject({ parts: 2, recipients: 3, duplicates: 0 });
        expect((await getOutbound(pair.marketing.store, deliveryId))!.state).toBe('finalized');
      });

      it('refuses a forged submit, finalize or state answer: nothing moves on the marketing side', async () => {
        const { deliveryId } = await seed('finalized-by-nobody', 2);
        forge = (request) =>
          request.url?.endsWith('/finalize') ? { state: 'in_progress', validUntil: null } : undefined;
        await expect(push(deliveryId)).rejects.toThrow(notSigned);
        const outbound = (await getOutbound(pair.marketing.store, deliveryId))!;
        expect(outbound.state).toBe('pushing');
        expect(outbound.finalized_at).toBeNull();

        const { deliveryId: other } = await seed('submitted-to-nobody', 1);
        forge = (request) =>
          request.url?.endsWith('/deliveries') ? { remoteId: 999, state: 'receiving', partsReceived: 5 } : undefined;
        await expect(push(other)).rejects.toThrow(notSigned);
        expect((await getOutbound(pair.marketing.store, other))!.remote_id).toBeNull();

        // A pause forwarded to a finalized push: a forged acknowledgement is not recorded.
        forge = () => undefined;
        await push(deliveryId);
        await transitionDelivery(pair.marketing.store, deliveryId, 'paused', clock.now());
        forge = (request) =>
          request.url?.endsWith('/state') ? { state: 'paused', version: 1, outcome: 'applied' } : undefined;
        const forwarded = await forwardState(pair.marketing.store, client, deliveryId, { retry, clock });
        expect(forwarded).toMatchObject({ kind: 'failed', retryable: true });
        expect(forwarded.kind === 'failed' && forwarded.error).toMatch(notSigned);
        expect(Number((await getOutbound(pair.marketing.store, deliveryId))!.state_acked_version)).toBe(0);
        forge = () => undefined;
        expect(await forwardState(pair.marketing.store, client, deliveryId, { retry, clock })).toMatchObject({
          kind: 'forwarded',
          remoteState: 'paused',
        });
      });

      it('refuses an answer signed with another secret, and says so', async () => {
        const { deliveryId } = await seed('signed-by-another', 1);
        forge = (request) =>
          isPart(request) ? { part: partNumber(request), recipients: 1, duplicate: false } : undefined;
        forgerSecret = 'another-secret-than-the-pairs-0123';
        try {
          await expect(push(deliveryId)).rejects.toThrow(/x-herald-answer-signature does not match/);
        } finally {
          forgerSecret = undefined;
        }
        const parts = await listParts(pair.marketing.store, deliveryId);
        expect(parts.map((part) => part.state)).toEqual(['pending']);
        expect(parts[0]!.last_error).toMatch(notSigned);
      });

      it('refuses forged log outcomes and counters: no outcome recorded, no address quarantined', async () => {
        const { deliveryId } = await seed('quarantined-by-nobody', 2);
        forge = () => undefined;
        await push(deliveryId);
        const logs = await pair.marketing.store.db
          .selectFrom('delivery_logs')
          .select(['id', 'email', 'status'])
          .where('delivery_id', '=', deliveryId)
          .orderBy('id')
          .execute();
        forge = (request) => {
          if (request.url?.includes('/logs?cursor=0&'))
            return {
              changes: logs.map((log, i) => ({
                seq: i + 1,
                id: Number(log.id),
                status: 'failed',
                attempts: 1,
                replyCode: 550,
                enhancedStatus: '5.1.1',
                replyText: '550 5.1.1 user unknown',
                failureType: 'hard',
                failureReason: 'user_unknown',
                failureCategory: 'userunknown',
                mxHost: 'mx.accept.test',
                sentAt: null,
                updatedAt: 1,
              })),
              nextCursor: logs.length,
              caughtUp: true,
              state: 'finished',
            };
          if (request.url?.includes('/logs?'))
            return { changes: [], nextCursor: logs.length, caughtUp: true, state: 'finished' };
          if (request.url?.endsWith('/counters'))
            return {
              state: 'finished',
              total: 2,
              pending: 0,
              sent: 0,
              failed: 2,
              ignored: 0,
              cancelled: 0,
              retried: 0,
              byReason: { user_unknown: 2 },
              updatedAt: 1,
            };
          return undefined;
        };
        const outbound = (await getOutbound(pair.marketing.store, deliveryId))!;
        await expect(
          syncDeliveryLogs(pair.marketing.store, client, outbound, { pageSize: 100, retry, clock, maxPages: 3 }),
        ).rejects.toThrow(notSigned);
        await expect(syncDeliveryCounters(pair.marketing.store, client, outbound, { retry, clock })).rejects.toThrow(
          notSigned,
        );
        const after = await pair.marketing.store.db
          .selectFrom('delivery_logs')
          .select(['id', 'email', 'status'])
          .where('delivery_id', '=', deliveryId)
          .orderBy('id')
          .execute();
        expect(after).toEqual(logs);
        for (const log of logs)
          expect((await getAddress(pair.marketing.store, log.email))?.state ?? 'valid').toBe('valid');
        const stored = (await getOutbound(pair.marketing.store, deliveryId))!;
        expect(Number(stored.log_cursor)).toBe(0);
        expect(stored.counters).toBe(outbound.counters);
        expect(stored.last_error).toMatch(notSigned);
        expect((await getDelivery(pair.marketing.store, deliveryId)).state).toBe('in_progress');

        // The real instance answering: the pull goes through (nothing sent yet over there).
        forge = () => undefined;
        const page = await syncDeliveryLogs(pair.marketing.store, client, stored, { pageSize: 100, retry, clock });
        expect(page.remoteState).toBe('in_progress');
        await syncDeliveryCounters(pair.marketing.store, client, stored, { retry, clock });
      });
    },
  );
}
