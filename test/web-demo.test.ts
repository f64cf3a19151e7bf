import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { expect, it } from 'vitest';
import { createWebClient } from './support/web-client.ts';

// `herald demo --keep-running` as an operator runs it: it prints the dashboard's URL and a one-time
// sign-in code; signing in with it shows the demo's delivery, and the code does not work twice;
// Ctrl-C stops everything.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');

it('herald demo --keep-running prints the dashboard URL and a one-time code that signs in once', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'herald-web-demo-'));
  const child = spawn(
    process.execPath,
    [heraldBin, 'demo', '--recipients', '60', '--validity-seconds', '4', '--keep-running'],
    {
      cwd,
      env: { ...process.env, HERALD_DATABASE_URL: '', HERALD_CONFIG: '', HERALD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  try {
    const found: { url?: string; token?: string } = {};
    const lines = createInterface({ input: child.stdout! });
    for await (const line of lines) {
      const dashboard = /^# dashboard: (http:\/\/\S+)$/.exec(line);
      if (dashboard) found.url = dashboard[1];
      const token = /sign in with this one-time code \(works once, within the hour\): (\S+)$/.exec(line);
      if (token) found.token = token[1];
      if (found.url && found.token) break;
    }
    expect(found.url).toMatch(/\/ui\/deliveries\/\d+$/);
    const url = new URL(found.url!);
    const web = createWebClient(url.origin);
    await web.signIn(found.token!);
    const page = await web.get(url.pathname);
    expect(page.status).toBe(200);
    expect(page.text).toContain('id="delivery-live"');
    expect(page.text).toContain('Demo demo-');
    await expect(createWebClient(url.origin).signIn(found.token!)).rejects.toThrow(/sign-in answered 401/);
  } finally {
    child.kill('SIGINT');
  }
  expect(await exited).toBe(0);
}, 120_000);
