import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { buildApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { runDemo } from '../src/demo/run-demo.ts';
import { openHerald } from '../src/main.ts';

// Regenerates docs/images/delivery-page.png (shown by the README): runs the demo's delivery against
// the ISP simulator on a scratch SQLite database, serves the dashboard, signs in with Debian's
// chromium (playwright-core) and screenshots the delivery page.
//   node --import tsx scripts/screenshot-dashboard.ts [--recipients N] [--out FILE]

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(name);
  return at >= 0 && args[at + 1] ? args[at + 1]! : fallback;
};
const recipients = Number(option('--recipients', '3000'));
const out = resolve(option('--out', resolve(import.meta.dirname, '../docs/images/delivery-page.png')));
const chromiumPath = process.env.HERALD_TEST_CHROMIUM ?? '/usr/bin/chromium';

const dataDir = mkdtempSync(join(tmpdir(), 'herald-screenshot-'));
const herald = await openHerald({
  config: parseConfig({ database: { url: `sqlite://${join(dataDir, 'herald.db')}` } }, 'screenshot'),
  logger: silentLogger,
});
const run = await runDemo(herald, { recipients, dataDir, validitySeconds: 30 });
const { token } = await createToken(herald.store, { role: 'operator', name: 'screenshot' }, Date.now());
const { app } = buildApiApp({ herald });
const url = await app.listen({ host: '127.0.0.1', port: 0 });
const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  await page.goto(`${url}/ui/sign-in`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${url}/ui/deliveries`);
  await page.goto(`${url}/ui/deliveries/${run.result.deliveryId}`);
  await page.locator('#throughput-chart canvas').waitFor();
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out} (delivery ${run.result.deliveryId}, ${run.result.total} logs)`);
} finally {
  await browser.close();
  await app.close();
  await run.close();
  await herald.close();
}
