import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createAuthLimiter } from '../src/api/auth-limiter.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { describeEachDialect } from './support/databases.ts';
import { createWebClient, csrfOf } from './support/web-client.ts';

// The dashboard's public sign-in form attacked from outside, over real HTTP: every refused sign-in
// is audited, so every one must count against the per-address limit, or a client writes audit rows
// without end.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));

describeEachDialect('dashboard sign-in abuse', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let url: string;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock,
    });
    api = buildApiApp({ herald, limiter: createAuthLimiter({ failuresPerWindow: 3, windowMs: 60_000 }) });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  const audited = async () =>
    (await herald.store.db.selectFrom('api_audit').select('status').where('path', '=', '/ui/sign-in').execute()).map(
      (row) => row.status,
    );

  it('counts an empty token sent with a valid form like a wrong one: audited until the limit, then 429', async () => {
    const stranger = createWebClient(url);
    let page = await stranger.get('/ui/sign-in');
    const before = (await audited()).length;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      // Each answer carries the next form (a fresh double-submit token), as a browser would post it.
      page = await stranger.post('/ui/sign-in', { _csrf: csrfOf(page.text), token: ' ' });
      statuses.push(page.status);
    }
    // Before: five 401 and five audit rows, one per request for as long as the client went on.
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    expect((await audited()).slice(before)).toEqual([401, 401, 401]);
    clock.advance(60_000);
  });
});
