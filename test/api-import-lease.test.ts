import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { createImport, findOrCreateList, getImport } from '../src/audience/audience-store.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { describeEachDialect } from './support/databases.ts';

// An import uploaded through the API judges the other running imports by import.leaseSeconds, as
// `herald import recipients` does: with the default (60 s) it took a live import renewed two minutes
// ago, under a lease of ten, for a dead one, failed it and deleted its staged rows.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));

describeEachDialect('API import lease', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let operator: string;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() }, import: { leaseSeconds: 600 } }, 'test'),
      logger: silentLogger,
      clock,
    });
    operator = (await createToken(herald.store, { role: 'operator' }, clock.now())).token;
    api = buildApiApp({ herald });
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  it('leaves alone an import renewed within import.leaseSeconds', async () => {
    const list = await findOrCreateList(herald.store, 'slow-disk', clock.now());
    const live = await createImport(herald.store, {
      listId: list.id,
      fileName: 'live.csv',
      now: clock.now() - 120_000,
    });
    const upload = await api.app.inject({
      method: 'POST',
      url: '/api/v1/lists/other/imports',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'text/csv' },
      payload: 'email\nann@example.com\n',
    });
    expect(upload.statusCode).toBe(202);
    await api.whenIdle();
    expect(await getImport(herald.store, live)).toMatchObject({ state: 'running', error: null });
    expect(await getImport(herald.store, upload.json().importId)).toMatchObject({
      state: 'finished',
      imported_count: 1,
    });
  });
});
