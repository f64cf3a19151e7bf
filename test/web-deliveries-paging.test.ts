import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { describeEachDialect } from './support/databases.ts';
import { createWebClient } from './support/web-client.ts';

// The deliveries list shows 200 a page: a platform with more used to show the latest 200 and no
// way to the others from the list. Pages follow by id (keyset), filters kept.

const total = 205;

describeEachDialect('the deliveries list past one page', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let url: string;
  let viewer: string;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
    });
    const now = Date.now();
    for (let i = 0; i < total; i++)
      await seedDelivery(herald.store.db, { now, recipients: [], state: i % 2 === 0 ? 'finished' : 'paused' });
    viewer = (await createToken(herald.store, { role: 'viewer', name: 'paging' }, now)).token;
    api = buildApiApp({ herald });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  }, 60_000);
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  const ids = (html: string) => [...html.matchAll(/<a href="\/ui\/deliveries\/(\d+)">/g)].map((m) => Number(m[1]));
  const nextOf = (html: string) => /<a href="([^"]+)">Next 200 →<\/a>/.exec(html)?.[1]?.replaceAll('&amp;', '&');

  it('reaches every delivery, 200 a page, the filters kept', async () => {
    const web = createWebClient(url);
    await web.signIn(viewer);
    const first = await web.get('/ui/deliveries');
    expect(ids(first.text)).toHaveLength(200);
    expect(ids(first.text)[0]).toBe(total);
    const next = nextOf(first.text);
    expect(next).toBe('/ui/deliveries?before=6');
    const second = await web.get(next!);
    expect(ids(second.text)).toEqual([5, 4, 3, 2, 1]);
    expect(nextOf(second.text)).toBeUndefined();
    expect(second.text).toContain('<a href="/ui/deliveries">First page</a>');

    // A name filter matching every delivery: the next page keeps it.
    const named = await web.get('/ui/deliveries?q=seed');
    expect(nextOf(named.text)).toBe('/ui/deliveries?q=seed&before=6');
    expect(ids((await web.get(nextOf(named.text)!)).text)).toEqual([5, 4, 3, 2, 1]);

    // Filtered on a state: 103 finished deliveries fit one page, no link to more.
    const finished = await web.get('/ui/deliveries?state=finished');
    expect(ids(finished.text)).toHaveLength(103);
    expect(nextOf(finished.text)).toBeUndefined();
    expect((await web.get('/ui/deliveries?before=abc')).status).toBe(400);
  });
});
