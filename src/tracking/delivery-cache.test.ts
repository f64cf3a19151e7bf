import { describe, expect, it } from 'vitest';
import { createDeliveryCache, type DeliverySource } from './delivery-cache.ts';
import { createKeyRing } from './token.ts';

// The mirror page of one recipient, reloaded in a loop by whoever holds its token, was rendered,
// signed and parsed again for every request (~0.5 ms each for a 20 KB message with 50 links: one
// client kept a core busy). It is now built once a minute per recipient.

const keyRing = createKeyRing({
  keys: [{ id: 'k1', secret: 'a-test-secret-of-enough-length', createdAt: 0 }],
  graceMs: 0,
  ttlMs: 365 * 86_400_000,
});
const html =
  '<html><body><p>Hi {{ first_name }}</p><a href="https://shop.example.com/{{ city }}">Shop</a></body></html>';

function countingSource(): DeliverySource & { logReads: number } {
  const people: Record<number, { deliveryId: number; email: string; first_name: string; city: string }> = {
    1: { deliveryId: 7, email: 'ada@example.test', first_name: 'Ada', city: 'paris' },
    2: { deliveryId: 7, email: 'alan@example.test', first_name: 'Alan', city: 'oslo' },
  };
  const source = {
    logReads: 0,
    links: async () => [{ index: 0, urlTemplate: 'https://shop.example.com/{{ city }}' }],
    templates: async (deliveryId: number) => (deliveryId === 7 ? { subject: 'Hi', html, text: null } : undefined),
    log: async (logId: number) => {
      source.logReads++;
      const person = people[logId];
      if (!person) return undefined;
      const { deliveryId, email, ...data } = person;
      return { id: logId, deliveryId, email, data: JSON.stringify(data), sentAt: 1_000 };
    },
  };
  return source;
}

describe('mirror pages from the delivery cache', () => {
  it('builds a recipient page once a minute however often it is viewed, and never serves it for another log', async () => {
    const source = countingSource();
    const cache = createDeliveryCache({
      source,
      decorator: { keyRing, baseUrl: 'https://t.herald.test', unsubscribeMailDomain: null },
    });
    const now = 1_000_000;
    const pages = await Promise.all(Array.from({ length: 200 }, (_, i) => cache.mirrorPage(7, 1, now + i * 100)));
    expect(new Set(pages).size).toBe(1);
    expect(pages[0]).toContain('Hi Ada');
    expect(source.logReads).toBe(1);

    expect(await cache.mirrorPage(7, 2, now)).toContain('Hi Alan');
    expect(await cache.mirrorPage(8, 1, now)).toBeUndefined();
    expect(await cache.mirrorPage(7, 1, now)).toContain('Hi Ada');
    const reads = source.logReads;
    expect(await cache.mirrorPage(7, 1, now + 61_000)).toContain('Hi Ada');
    expect(source.logReads).toBe(reads + 1);
  });
});
