import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { definitionFromJson } from '../src/delivery/definition.ts';
import { createDelivery } from '../src/delivery/delivery-store.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { describeEachDialect } from './support/databases.ts';
import { preparedDelivery } from './support/fixtures.ts';

// GET /deliveries answered the latest 100 deliveries and nothing else: no `next`, no way to reach the
// 101st, so a client syncing its deliveries silently missed every older one. It now pages by key like
// every other list (`before`, `limit`, `next`), and a delivery created meanwhile shifts nothing.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));

describeEachDialect('API delivery list pages', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let viewer: string;
  const create = async (name: string) =>
    (
      await createDelivery(
        herald.store,
        definitionFromJson({ name, from: 'news@example.com', subject: 'Hello', text: 'Hi' }),
        { validityHours: 24 },
        clock.now(),
      )
    ).id;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock,
    });
    viewer = (await createToken(herald.store, { role: 'viewer' }, clock.now())).token;
    api = buildApiApp({ herald });
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  const page = async (query: string) => {
    const answer = await api.app.inject({
      method: 'GET',
      url: `/api/v1/deliveries${query}`,
      headers: { authorization: `Bearer ${viewer}` },
    });
    expect(answer.statusCode, answer.body).toBe(200);
    return answer.json() as { deliveries: Array<{ id: number }>; next: number | null };
  };

  it('reaches every delivery, past the first hundred, newest first, without a duplicate', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 130; i++) ids.push(await create(`d${i}`));
    const first = await page('');
    expect(first.deliveries).toHaveLength(100);
    expect(first.next).not.toBeNull();
    const seen = first.deliveries.map((d) => d.id);
    // One created between two pages is on no page of this walk, and shifts none of the older ones.
    await create('late');
    let next = first.next;
    while (next !== null) {
      const more = await page(`?before=${next}&limit=7`);
      seen.push(...more.deliveries.map((d) => d.id));
      next = more.next;
    }
    expect(seen).toEqual([...ids].reverse());
  });

  it('gives next: null on a last page that is exactly full, not an empty page after it', async () => {
    const id = await preparedDelivery(herald, 'ten', 10, {
      name: 'Ten',
      from: 'news@example.com',
      subject: 'Hi',
      text: 'Hi',
    });
    const logs = async (query: string) => {
      const answer = await api.app.inject({
        method: 'GET',
        url: `/api/v1/deliveries/${id}/logs${query}`,
        headers: { authorization: `Bearer ${viewer}` },
      });
      expect(answer.statusCode, answer.body).toBe(200);
      return answer.json() as { items: Array<{ id: number }>; next: number | null };
    };
    const whole = await logs('?limit=10');
    expect(whole.items).toHaveLength(10);
    expect(whole.next).toBeNull();
    const first = await logs('?limit=5');
    expect(first.next).toBe(first.items[4]!.id);
    const second = await logs(`?limit=5&after=${first.next}`);
    expect(second.items).toHaveLength(5);
    expect(second.next).toBeNull();
  });
});
