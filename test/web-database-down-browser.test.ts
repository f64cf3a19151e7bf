import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { browserUnavailable, launchBrowser, saveScreenshot } from './support/browser.ts';
import { type CuttableProxy, postgresBehindProxy } from './support/cuttable-proxy.ts';
import { postgresUnavailable, type TestDatabase } from './support/databases.ts';

// The delivery page an operator leaves open while the database goes away (PostgreSQL behind a proxy
// that resets every connection) and comes back: the live region polls every 2 s. Then a page opened
// while nothing listens at the database's address.

describe.skipIf(browserUnavailable !== undefined || postgresUnavailable !== undefined)(
  'the delivery page while the database is down',
  () => {
    let database: TestDatabase;
    let proxy: CuttableProxy;
    let herald: Herald;
    let api: ApiApp;
    let url: string;
    let browser: Browser;
    let viewer: string;
    let deliveryId: number;

    beforeAll(async () => {
      let proxied: string;
      ({ database, proxy, url: proxied } = await postgresBehindProxy());
      herald = await openHerald({
        config: parseConfig({ database: { url: proxied } }, 'test'),
        logger: silentLogger,
      });
      const now = Date.now();
      ({ deliveryId } = await seedDelivery(herald.store.db, {
        now,
        recipients: [{ email: 'a@private.example' }, { email: 'b@private.example' }],
      }));
      viewer = (await createToken(herald.store, { role: 'viewer', name: 'database down' }, now)).token;
      api = buildApiApp({ herald });
      url = await api.app.listen({ host: '127.0.0.1', port: 0 });
      browser = await launchBrowser();
    }, 60_000);

    async function signedInPage(): Promise<Page> {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${url}/ui/sign-in`);
      await page.getByLabel('API token').fill(viewer);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${url}/ui/deliveries`);
      return page;
    }

    afterAll(async () => {
      await browser?.close();
      await api?.app.close();
      await herald?.close();
      await proxy?.close();
      await database?.drop();
    });

    it('keeps the last figures with a notice while the polls fail, and updates again once the database is back', async () => {
      const page = await signedInPage();
      await page.goto(`${url}/ui/deliveries/${deliveryId}`);
      await expect.poll(() => page.locator('#count-pending').textContent()).toBe('2');

      proxy.refuse();
      await page.waitForResponse((r) => r.url().endsWith('/live') && r.status() >= 500, { timeout: 20_000 });
      const failing = page.locator('#delivery-live [role="alert"]');
      await expect.poll(() => failing.count(), { timeout: 10_000 }).toBe(1);
      await saveScreenshot(page, 'delivery-database-down');
      // The page is the same page: one header, one navigation, the last figures still shown.
      expect(await page.locator('nav').count()).toBe(1);
      expect(await page.locator('h1').count()).toBe(1);
      expect(await page.locator('#count-pending').textContent()).toBe('2');
      expect(await failing.textContent()).toMatch(/not updated since/i);

      proxy.resume();
      await expect.poll(() => failing.count(), { timeout: 20_000 }).toBe(0);
      expect(await page.locator('#count-pending').textContent()).toBe('2');
      await saveScreenshot(page, 'delivery-database-back');
      await page.close();
    }, 90_000);

    it('says the database does not answer, not "internal error", once PostgreSQL is gone', async () => {
      const page = await signedInPage();
      await proxy.close(); // nothing listens any more: every new connection is refused
      const answer = await page.goto(`${url}/ui/deliveries/${deliveryId}`);
      expect(answer?.status()).toBe(503);
      expect(await page.locator('h1').textContent()).toBe('Database unavailable');
      expect(await page.locator('main').textContent()).toContain('The database is unavailable (it cannot be reached)');
      // The database's address is for the server log, not for whoever asks (no session is needed here).
      expect(await page.content()).not.toContain(String(proxy.port));
      await saveScreenshot(page, 'page-database-down');
      await page.close();
    }, 60_000);
  },
);
