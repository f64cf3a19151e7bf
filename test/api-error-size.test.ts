import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { describeEachDialect } from './support/databases.ts';

// A body of a megabyte of unknown fields ({"a":0,"b":0,…}) was answered with one error per field:
// 5.5 MB of problem+json for 1 MB in, to any viewer token, on the event loop the MTA shares under
// `herald start`. The problem now lists the first errors and counts the others.

describeEachDialect('API error bodies', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let viewer: string;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
    });
    viewer = (await createToken(herald.store, { role: 'viewer' }, Date.now())).token;
    api = buildApiApp({ herald });
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  it('lists at most 50 field errors and counts the rest, however many fields a body gets wrong', async () => {
    const fields = Array.from({ length: 20_000 }, (_, i) => `"f${i}":0`);
    const answer = await api.app.inject({
      method: 'POST',
      url: '/api/v1/deliveries/validate',
      payload: `{${fields.join(',')}}`,
      headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json' },
    });
    expect(answer.statusCode).toBe(400);
    const problem = answer.json() as { detail: string; errors: Array<{ path: string; message: string }> };
    expect(problem.errors).toHaveLength(50);
    expect(problem.errors).toContainEqual({ path: '/body/f0', message: 'unknown field' });
    expect(problem.detail).toContain('the first 50 of 20003 errors');
    expect(answer.body.length).toBeLessThan(10_000);
  });
});
