import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

// Browser tests drive Debian's chromium package with playwright-core (no browser download). Outside
// CI a missing /usr/bin/chromium skips them with the reason printed; in CI it fails the run
// (.ci/run installs it).

export const chromiumPath = process.env.HERALD_TEST_CHROMIUM ?? '/usr/bin/chromium';

export const browserUnavailable = existsSync(chromiumPath) ? undefined : `no chromium at ${chromiumPath}`;
if (browserUnavailable) {
  if (process.env.CI) throw new Error(`CI requires a browser: ${browserUnavailable} (apt-get install chromium)`);
  console.warn(`skipping browser tests: ${browserUnavailable} (apt-get install chromium)`);
}

/** Screenshots of the pages the tests checked: test artifacts, ignored by git. */
export const screenshotDirectory = resolve(import.meta.dirname, '../../test-artifacts/screenshots');

export async function launchBrowser(): Promise<Browser> {
  // --no-sandbox: CI containers run as root, where chromium's sandbox cannot start.
  return chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

export interface PageProblems {
  list(): string[];
}

/** Every console error, uncaught page error, failed request and HTTP error status the page meets. */
export function watchPage(
  page: Page,
  options: { allowStatus?: (url: string, status: number) => boolean } = {},
): PageProblems {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    // A poll cut short by a navigation is the browser's doing, not a failure of the server.
    if (request.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400 && !options.allowStatus?.(response.url(), response.status()))
      problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  return { list: () => [...problems] };
}

export async function saveScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(screenshotDirectory, { recursive: true });
  const path = join(screenshotDirectory, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's WCAG 2 A/AA checks (labels, colour contrast ≥ 4.5:1, names) on the page as it is. */
export async function accessibilityViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the page's CSP (no inline script) does not apply.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: unknown, options: unknown): Promise<unknown> } }).axe;
    return (await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } })) as {
      violations: Array<{ id: string; help: string; nodes: Array<{ target: unknown }> }>;
    };
  });
  return result.violations.map(
    (v) =>
      `${v.id}: ${v.help} (${v.nodes
        .map((n) => JSON.stringify(n.target))
        .slice(0, 3)
        .join(', ')})`,
  );
}

/** Tabs through the page: each focused element must show a visible outline (keyboard focus). */
export async function focusWithoutOutline(page: Page, tabs: number): Promise<string[]> {
  const missing: string[] = [];
  for (let i = 0; i < tabs; i += 1) {
    await page.keyboard.press('Tab');
    const seen = await page.evaluate(() => {
      const element = document.activeElement as HTMLElement | null;
      if (!element || element === document.body) return null;
      const style = getComputedStyle(element);
      const visible = style.outlineStyle !== 'none' && Number.parseFloat(style.outlineWidth) >= 2;
      return { visible, what: `${element.tagName.toLowerCase()} ${element.textContent?.trim().slice(0, 30) ?? ''}` };
    });
    if (seen && !seen.visible) missing.push(seen.what);
  }
  return missing;
}
