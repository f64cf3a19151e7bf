import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { createDelivery } from '../src/delivery/delivery-store.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { applyAddressEvents } from '../src/quarantine/address-events.ts';
import { DEFAULT_QUARANTINE_SETTINGS } from '../src/quarantine/types.ts';
import { browserUnavailable, launchBrowser, saveScreenshot } from './support/browser.ts';
import { describeEachDialect } from './support/databases.ts';
import { insertList } from './support/fixtures.ts';

// Strings the dashboard did not write (a recipient address, a bounce's text, a delivery name), each
// carrying a Unicode right-to-left override, in a real browser: what a cell displays, read from the
// positions chromium laid its characters at, is the text it holds, the override shown as [U+202E]
// instead of reversing what follows it. A form field still posts the value itself.

const rlo = '\u202E';
// Displayed, before: "victim@bank.example", "550 5.1.1 user unknown", "Invoice exe.pdf".
const email = `victim@${rlo}elpmaxe.knab`;
const replyText = `550 5.1.1 ${rlo}nwonknu resu`;
const deliveryName = `Invoice ${rlo}fdp.exe`;

/**
 * The characters of an element's text, in the order the browser displays them: line by line, left to
 * right. Spaces are left out (one at the end of a wrapped line has no width).
 */
function displayed(page: Page, selector: string): Promise<string> {
  return page
    .locator(selector)
    .first()
    .evaluate((element) => {
      const characters: Array<{ line: number; x: number; character: string }> = [];
      const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode() as Text | null; node; node = walker.nextNode() as Text | null)
        for (let index = 0; index < node.data.length; index++) {
          const range = document.createRange();
          range.setStart(node, index);
          range.setEnd(node, index + 1);
          const box = range.getBoundingClientRect();
          if (box.width > 0 && node.data[index] !== ' ')
            characters.push({ line: Math.round(box.top), x: box.left, character: node.data[index]! });
        }
      return characters
        .sort((a, b) => a.line - b.line || a.x - b.x)
        .map((c) => c.character)
        .join('');
    });
}

describeEachDialect('dashboard and bidirectional controls', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let url: string;
  let browser: Browser;
  let operator: string;

  beforeAll(async () => {
    if (browserUnavailable) return;
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
    });
    operator = (await createToken(herald.store, { role: 'operator', name: 'bidi test' }, Date.now())).token;
    await insertList(herald.store, 'bidi', [{ email: 'reader@example.test' }]);
    await createDelivery(
      herald.store,
      {
        name: deliveryName,
        fromAddress: 'news@herald.test',
        fromName: 'Herald',
        replyTo: null,
        subject: 'Hello',
        html: '<p>Hello</p>',
        text: 'Hello',
        listName: 'bidi',
        validityHours: 1,
        affinity: null,
        scheduledAt: null,
      },
      { validityHours: 1 },
      Date.now(),
    );
    await applyAddressEvents(
      herald.store,
      [
        {
          email,
          at: Date.now(),
          source: 'bounce',
          replyText,
          verdict: { category: 'userunknown', reason: 'user_unknown', type: 'hard', ruleId: 'r', packVersion: 'p1' },
        },
      ],
      DEFAULT_QUARANTINE_SETTINGS,
      Date.now(),
    );
    api = buildApiApp({ herald });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchBrowser();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.app.close();
    await herald?.close();
  });

  it.skipIf(browserUnavailable)(
    'displays a right-to-left override as [U+202E] instead of reversing the text after it',
    async () => {
      const page = await browser.newPage({ viewport: { width: 1600, height: 900 } });
      await page.goto(`${url}/ui/sign-in`);
      await page.getByLabel('API token').fill(operator);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${url}/ui/deliveries`);

      const nameCell = page.locator('td', { hasText: 'Invoice' });
      expect(await displayed(page, 'td:has-text("Invoice")')).toBe('Invoice[U+202E]fdp.exe');
      expect(await nameCell.first().textContent()).not.toContain(rlo);
      await saveScreenshot(page, `${context.dialect}-bidi-deliveries`);

      await page.goto(`${url}/ui/bounces`);
      expect(await displayed(page, 'td:has-text("victim@")')).toBe('victim@[U+202E]elpmaxe.knab');
      expect(await displayed(page, 'td.reply:has-text("550 5.1.1")')).toBe('5505.1.1[U+202E]nwonknuresu');
      await saveScreenshot(page, `${context.dialect}-bidi-bounces`);

      await page.locator('a', { hasText: 'victim@' }).first().click();
      await page.waitForURL(/\/ui\/quarantine\/address/);
      expect(await displayed(page, 'h1')).toBe('victim@[U+202E]elpmaxe.knab');
      // The release form posts the address itself, not what is displayed of it.
      expect(await page.locator('input[name="email"]').inputValue()).toBe(email);
      await page.close();
    },
  );
});
