import { describe, expect, it } from 'vitest';
import { manualClock } from '../common/clock.ts';
import { silentLogger } from '../common/logger.ts';
import { createDeliveryCache } from './delivery-cache.ts';
import { createEventLog, type RawEvent } from './event-log.ts';
import { buildTrackingApp } from './server.ts';
import { createKeyRing } from './token.ts';

// A one-click unsubscribe replayed in a loop (its own token, a client retrying forever) read the
// log and ran a transaction each time — on SQLite on the event loop, slowing every redirect of the
// server. Once recorded, replays are answered from memory.

describe('one-click unsubscribe replays', () => {
  it('records a log once, answers every replay the same, and other logs still reach the store', async () => {
    const keyRing = createKeyRing({
      keys: [{ id: 'k1', secret: 'a-test-secret-of-enough-length', createdAt: 0 }],
      graceMs: 0,
      ttlMs: 365 * 86_400_000,
    });
    let logReads = 0;
    const cache = createDeliveryCache({
      source: {
        links: async () => [],
        templates: async () => ({ subject: 'Hi', html: '<p>Hi</p>', text: null }),
        log: async (logId) => {
          logReads++;
          return { id: logId, deliveryId: 7, email: `u${logId}@example.test`, data: '{}', sentAt: 0 };
        },
      },
      decorator: { keyRing, baseUrl: 'https://t.herald.test', unsubscribeMailDomain: null },
    });
    const recorded: Array<{ email: string; event: RawEvent }> = [];
    const app = buildTrackingApp({
      keyRing,
      cache,
      events: createEventLog({ write: async () => {}, maxBuffered: 1_000, batchSize: 100, flushIntervalMs: 60_000 }),
      unsubscribe: async (email, event) => {
        recorded.push({ email, event });
        return recorded.filter((entry) => entry.event.logId === event.logId).length === 1;
      },
      clock: manualClock(86_400_000),
      flags: { automatedClickSeconds: 10, burstClicks: 3 },
      messageBudget: { burst: 200, perSecond: 1 },
      logger: silentLogger,
    });
    try {
      const post = (logId: number) =>
        app.inject({
          method: 'POST',
          url: `/u/${keyRing.sign({ kind: 'unsubscribe', deliveryId: 7, logId, issuedAt: 0 })}`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'List-Unsubscribe=One-Click',
        });
      const answers = [];
      for (let i = 0; i < 100; i++) answers.push(await post(1));
      expect(answers.every((answer) => answer.statusCode === 200 && answer.body.includes('unsubscribed'))).toBe(true);
      expect((await post(2)).statusCode).toBe(200);
      expect(recorded.map((entry) => entry.email)).toEqual(['u1@example.test', 'u2@example.test']);
      expect(logReads).toBe(2);
    } finally {
      await app.close();
    }
  });
});
