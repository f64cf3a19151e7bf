import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { browserUnavailable, launchBrowser, saveScreenshot } from './support/browser.ts';
import { describeEachDialect } from './support/databases.ts';

// Strings from outside at their longest, without a space: a 200-character delivery name (the API's
// limit), a 254-character address (RFC 5321) and a 253-character MX host name. A table cell holding
// one used to widen its table past the screen (6,767 px for the logs page in a 1,280 px window),
// pushing the status, reply and reason columns out of sight.

const width = 1280;

describeEachDialect('dashboard pages with long unbroken strings', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let url: string;
  let browser: Browser;
  let viewer: string;
  let deliveryId: number;

  beforeAll(async () => {
    if (browserUnavailable) return;
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
    });
    const now = Date.now();
    const address = `${'a'.repeat(64)}@${'d'.repeat(180)}.example`;
    ({ deliveryId } = await seedDelivery(herald.store.db, { now, recipients: [{ email: address }] }));
    await herald.store.db
      .updateTable('deliveries')
      .set({ name: `\u202e${'W'.repeat(199)}` })
      .where('id', '=', deliveryId)
      .execute();
    await herald.store.db
      .updateTable('delivery_logs')
      .set({ mx_host: `mx.${'m'.repeat(241)}.example`, last_reply_code: 451, last_reply_text: 'R'.repeat(990) })
      .where('delivery_id', '=', deliveryId)
      .execute();
    await herald.store.db
      .insertInto('addresses')
      .values({
        email: address,
        state: 'quarantined',
        error_count: 3,
        last_error_at: now,
        reason: 'user_unknown',
        updated_at: now,
      })
      .execute();
    viewer = (await createToken(herald.store, { role: 'viewer', name: 'long strings' }, now)).token;
    api = buildApiApp({ herald });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchBrowser();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.app.close();
    await herald?.close();
  });

  it.skipIf(browserUnavailable)('keeps the deliveries, logs and quarantine tables within the window', async () => {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    await page.goto(`${url}/ui/sign-in`);
    await page.getByLabel('API token').fill(viewer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${url}/ui/deliveries`);
    for (const path of [
      '/ui/deliveries',
      `/ui/deliveries/${deliveryId}`,
      `/ui/deliveries/${deliveryId}/logs`,
      '/ui/quarantine',
    ]) {
      await page.goto(`${url}${path}`);
      await saveScreenshot(page, `long-strings-${context.dialect}${path.replace(/\W+/g, '-')}`);
      expect({ path, scrollWidth: await page.evaluate(() => document.documentElement.scrollWidth) }).toEqual({
        path,
        scrollWidth: width,
      });
    }
    await page.close();
  });
});
