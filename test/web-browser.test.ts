import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { importRecipients } from '../src/audience/csv-import.ts';
import { silentLogger } from '../src/common/logger.ts';
import { composeMta, type ComposedMta } from '../src/compose-mta.ts';
import { parseConfig } from '../src/config/load.ts';
import { demoContent, writeDemoCsv } from '../src/demo/demo-audience.ts';
import { demoMtaConfig } from '../src/demo/run-demo.ts';
import { createDelivery } from '../src/delivery/delivery-store.ts';
import { prepareConfigured } from '../src/delivery/operator-actions.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { applyAddressEvents } from '../src/quarantine/address-events.ts';
import { DEFAULT_QUARANTINE_SETTINGS } from '../src/quarantine/types.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { builtinWorkflows } from '../src/workflows/builtins/index.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { createWorkflowRegistry } from '../src/workflows/registry.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import type { WorkflowDefinition } from '../src/workflows/types.ts';
import {
  accessibilityViolations,
  browserUnavailable,
  focusWithoutOutline,
  launchBrowser,
  saveScreenshot,
  watchPage,
  type PageProblems,
} from './support/browser.ts';
import { describeEachDialect } from './support/databases.ts';

// The dashboard in a real browser (Debian's chromium through playwright-core) on both dialects: sign
// in, start a small delivery against the ISP simulator, watch its progress and chart update live,
// pause and resume it through the confirmation pages; every page renders with no console error and
// no failed request, passes axe-core's WCAG 2 AA checks and shows keyboard focus. Screenshots go to
// test-artifacts/screenshots (not committed).

// ~2 messages per second per simulated MX host: long enough to watch a few ticks and pause mid-way.
const slowRules = `rules:
  - name: sim-slow
    mask: "*"
    maxConnections: 2
    maxMessagesPerHour: 7200
    burst: 1
`;

describeEachDialect('dashboard in a browser', (context) => {
  let broken = true;
  const flaky: WorkflowDefinition = {
    name: 'flaky',
    description: 'fails once, then works',
    schedule: '0 4 * * *',
    steps: [{ name: 'write', run: async () => (broken ? { kind: 'failed', error: 'disk full' } : { kind: 'done' }) }],
  };
  let herald: Herald;
  let simulator: Simulator;
  let mta: ComposedMta;
  let api: ApiApp;
  let url: string;
  let browser: Browser;
  let operator: string;
  let deliveryId: number;

  beforeAll(async () => {
    if (browserUnavailable) return;
    const directory = mkdtempSync(join(tmpdir(), 'herald-web-'));
    simulator = await startSimulator({ greylistDelayMs: 0, trackRecipients: false });
    const rules = join(directory, 'slow-rules.yaml');
    writeFileSync(rules, slowRules);
    herald = await openHerald({
      config: parseConfig(
        { database: { url: context.url() }, shaping: { rulesFiles: [rules], siteRulesDir: '' } },
        'test',
      ),
      logger: silentLogger,
    });
    operator = (await createToken(herald.store, { role: 'operator', name: 'browser test' }, Date.now())).token;
    const csv = join(directory, 'audience.csv');
    await writeDemoCsv(csv, 240, simulator.scenario);
    await importRecipients({
      store: herald.store,
      file: csv,
      list: 'browser',
      maxFileBytes: herald.config.import.maxFileBytes,
      maxRecordBytes: herald.config.import.maxRecordBytes,
    });
    const delivery = await createDelivery(
      herald.store,
      {
        name: 'Browser test',
        fromAddress: 'news@herald.test',
        fromName: 'Herald',
        replyTo: null,
        subject: demoContent.subject,
        html: demoContent.html,
        text: demoContent.text,
        listName: 'browser',
        validityHours: 1 / 60,
        affinity: null,
        scheduledAt: null,
      },
      { validityHours: 1 },
      Date.now(),
    );
    deliveryId = delivery.id;
    await prepareConfigured(herald, deliveryId);
    mta = await composeMta(herald, {
      nodeId: 'browser-test',
      mtaConfig: demoMtaConfig(herald.config.mta, simulator),
    });
    await mta.start();
    await applyAddressEvents(
      herald.store,
      [
        {
          email: 'blocked@bigisp.test',
          at: Date.now(),
          source: 'smtp',
          replyText: '554 5.7.1 Client host blocked <script>alert(1)</script>',
          verdict: { category: 'blocked', reason: 'refused', type: 'hard', ruleId: 'ip-blocklist', packVersion: 'p1' },
        },
      ],
      DEFAULT_QUARANTINE_SETTINGS,
      Date.now(),
    );
    const engine = createWorkflowEngine({
      ...herald,
      ticker: manualTicker,
      registry: createWorkflowRegistry([...builtinWorkflows(), flaky]),
    });
    api = buildApiApp({ herald, engine });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await api?.app.close();
    await mta?.stop();
    await simulator?.close();
    await herald?.close();
  });

  async function openPage(): Promise<{ page: Page; problems: PageProblems }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    return { page, problems: watchPage(page) };
  }

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${url}/ui/sign-in`);
    await page.getByLabel('API token').fill(operator);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${url}/ui/deliveries`);
  }

  const number = (text: string | null) => Number((text ?? '').replace(/[^\d]/g, ''));

  async function confirmAction(page: Page, label: 'Start' | 'Pause' | 'Resume'): Promise<void> {
    await page.locator('#delivery-live').getByRole('link', { name: label }).click();
    await page.waitForURL(new RegExp(`/confirm/${label.toLowerCase()}$`));
    await page.getByRole('button', { name: label }).click();
    await page.waitForURL(`${url}/ui/deliveries/${deliveryId}`);
  }

  it.skipIf(browserUnavailable)(
    'signs in, starts a delivery, watches progress and the chart update, pauses and resumes it',
    async () => {
      const { page, problems } = await openPage();
      await signIn(page);
      await page.getByRole('link', { name: 'Browser test' }).waitFor();
      await saveScreenshot(page, `${context.dialect}-deliveries`);

      await page.getByRole('link', { name: 'Browser test' }).click();
      await confirmAction(page, 'Start');
      // Live: the counts and the chart change without a reload (htmx polling every 2 s).
      const sent = page.locator('#count-sent');
      await page.waitForFunction(
        () => Number(document.getElementById('count-sent')?.textContent?.replace(/\D/g, '')) > 0,
        undefined,
        { timeout: 60_000 },
      );
      const firstSent = number(await sent.textContent());
      const chart = page.locator('#throughput-chart');
      await chart.locator('canvas').waitFor();
      await page.waitForFunction(
        (before) => Number(document.getElementById('count-sent')?.textContent?.replace(/\D/g, '')) > before,
        firstSent,
        { timeout: 60_000 },
      );
      await page.waitForFunction(
        () => Number(document.getElementById('throughput-chart')?.getAttribute('data-sent')) > 0,
        undefined,
        { timeout: 60_000 },
      );
      const chartSent = Number(await chart.getAttribute('data-sent'));
      await page.waitForFunction(
        (before) => Number(document.getElementById('throughput-chart')?.getAttribute('data-sent')) > before,
        chartSent,
        { timeout: 60_000 },
      );
      await saveScreenshot(page, `${context.dialect}-delivery-in-progress`);

      await confirmAction(page, 'Pause');
      await expect.poll(() => page.locator('#progress-title .state').textContent(), { timeout: 10_000 }).toBe('paused');
      await saveScreenshot(page, `${context.dialect}-delivery-paused`);
      await confirmAction(page, 'Resume');
      await expect
        .poll(() => page.locator('#progress-title .state').textContent(), { timeout: 10_000 })
        .toMatch(/in_progress|finished/);

      await page.goto(`${url}/ui/deliveries/${deliveryId}/logs?status=sent`);
      await page.locator('tbody tr').first().waitFor();
      await saveScreenshot(page, `${context.dialect}-logs`);
      expect(problems.list()).toEqual([]);
      await page.close();
    },
    180_000,
  );

  it.skipIf(browserUnavailable)(
    'restarts a failed workflow and releases a quarantined address; every page renders cleanly',
    async () => {
      const { page, problems } = await openPage();
      await signIn(page);
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workflows' }).click();
      await page.getByRole('link', { name: 'flaky' }).click();
      await page.getByRole('link', { name: 'Run now' }).click();
      await page.getByRole('button', { name: 'Run now' }).click();
      await page.waitForURL(`${url}/ui/workflows/flaky`);
      await page.locator('.state-failed').first().waitFor();
      broken = false;
      await page.getByRole('link', { name: 'Restart from the failed step' }).click();
      await page.getByRole('button', { name: 'Restart from the failed step' }).click();
      await page.waitForURL(`${url}/ui/workflows/flaky`);
      await page.locator('.state-idle').first().waitFor();
      await saveScreenshot(page, `${context.dialect}-workflow`);

      await page.goto(`${url}/ui/quarantine`);
      await page.getByRole('link', { name: 'blocked@bigisp.test' }).click();
      await page.getByText('554 5.7.1 Client host blocked <script>alert(1)</script>').waitFor();
      await page.getByLabel('Note').fill('false positive');
      await page.getByRole('button', { name: 'Release to valid' }).click();
      await page.locator('dd .state', { hasText: 'valid' }).waitFor();
      await saveScreenshot(page, `${context.dialect}-address`);

      for (const [path, name] of [
        ['/ui/workflows', 'workflows'],
        ['/ui/quarantine', 'quarantine'],
        ['/ui/quarantine/bulk?domain=bigisp.test&since=2020-01-01', 'quarantine-bulk'],
        ['/ui/doctor', 'doctor'],
        ['/ui/mx', 'mx'],
        ['/ui/bounces', 'bounces'],
        ['/ui/database', 'database'],
        ['/ui/mid', 'mid'],
      ] as const) {
        await page.goto(`${url}${path}`);
        await page.locator('h1').waitFor();
        expect(await accessibilityViolations(page), path).toEqual([]);
        await saveScreenshot(page, `${context.dialect}-${name}`);
      }
      expect(problems.list()).toEqual([]);
      await page.close();
    },
    180_000,
  );

  it.skipIf(browserUnavailable)(
    'renders the main pages accessibly: labelled inputs, contrast of at least 4.5:1, visible keyboard focus',
    async () => {
      const { page, problems } = await openPage();
      await page.goto(`${url}/ui/sign-in`);
      expect(await accessibilityViolations(page)).toEqual([]);
      expect(await focusWithoutOutline(page, 3)).toEqual([]);
      await signIn(page);
      for (const path of ['/ui/deliveries', `/ui/deliveries/${deliveryId}`, `/ui/deliveries/${deliveryId}/logs`]) {
        await page.goto(`${url}${path}`);
        expect(await accessibilityViolations(page), path).toEqual([]);
        expect(await focusWithoutOutline(page, 8), path).toEqual([]);
      }
      expect(problems.list()).toEqual([]);
      await page.goto(`${url}/ui/no-such-page`);
      await page.getByRole('heading', { name: 'Not found' }).waitFor();
      expect(await accessibilityViolations(page)).toEqual([]);
      await saveScreenshot(page, `${context.dialect}-not-found`);
      await page.close();
    },
    120_000,
  );
});
