import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';

// Issue 13 item 1: the defaults are for the demo; `config check`, `herald start` and `herald doctor`
// name each setting unsafe for real mail before mail goes out.

const dir = mkdtempSync(join(tmpdir(), 'herald-safety-'));

describe('unsafe settings are named', () => {
  it('config check lists each unsafe default with its key and fix, exit 0', async () => {
    const run = await runHerald('sqlite::memory:', ['config', 'check']);
    expect(run.exitCode).toBe(0);
    const out = run.stdout.join('\n');
    expect(out).toContain('configuration is valid, but 4 settings are unsafe for real mail');
    expect(out).toContain(
      '- tracking.baseUrl: tracking links, the open pixel and List-Unsubscribe point at http://127.0.0.1:8090',
    );
    expect(out).toContain('- mta.bounceDomain: the envelope sender is bounce+N@bounces.herald.invalid');
    expect(out).toContain('- mta.heloName: EHLO announces "localhost"');
    expect(out).toContain('- mta.dkim: no DKIM key is configured');
    expect(out).toMatch(/fix: set tracking\.baseUrl to the public https:\/\//);
  });

  it('config check --strict --json exits 1 with CONFIG_UNSAFE and the warnings', async () => {
    const run = await runHerald('sqlite::memory:', ['config', 'check', '--strict', '--json']);
    expect(run.exitCode).toBe(1);
    const [report, failure] = run.json<Record<string, unknown>>();
    expect(report).toMatchObject({ ok: false, configFile: null });
    expect((report!.warnings as Array<{ id: string }>).map((w) => w.id)).toEqual([
      'tracking-base-url-loopback',
      'bounce-domain-reserved',
      'helo-name-not-public',
      'dkim-missing',
    ]);
    expect(failure).toMatchObject({
      error: { code: 'CONFIG_UNSAFE', message: expect.stringContaining('mta.heloName') },
    });
  });

  it('a production-like configuration is valid and safe', async () => {
    const file = join(dir, 'safe.yaml');
    writeFileSync(
      file,
      [
        'tracking:',
        '  baseUrl: https://t.news.example.net',
        'mta:',
        '  heloName: mta1.news.example.net',
        '  bounceDomain: bounces.news.example.net',
        // A resolver that refuses: the lookup says nothing either way, so no network is needed.
        '  resolverServers: ["127.0.0.1:1"]',
        '  dkim:',
        '    - { domain: news.example.net, selector: s1, privateKeyFile: /keys/s1.pem }',
      ].join('\n'),
    );
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('configuration is valid and safe for real mail');
    expect(run.stdout).toContain(`config file: ${file}`);
  });

  it('herald start warns on stderr, and refuses with --strict (CONFIG_UNSAFE, nothing started)', async () => {
    const run = await runHerald('sqlite::memory:', ['start', '--roles', 'mta', '--strict']);
    expect(run.exitCode).toBe(1);
    const stderr = run.stderr.join('\n');
    expect(stderr).toMatch(
      /^error: CONFIG_UNSAFE: 4 settings unsafe for real mail: tracking\.baseUrl, mta\.bounceDomain, mta\.heloName, mta\.dkim/m,
    );
    expect(stderr).not.toContain('running mta');
  });

  it('herald doctor reports the configuration check, so a default setup no longer passes every check', async () => {
    const run = await runHerald('sqlite::memory:', ['doctor', '--json']);
    const [report] = run.json<{ checks: string[]; findings: Array<{ check: string; subject: string }> }>();
    expect(report!.checks).toContain('configuration');
    expect(report!.findings.filter((f) => f.check === 'configuration').map((f) => f.subject)).toEqual([
      'config tracking.baseUrl',
      'config mta.bounceDomain',
      'config mta.heloName',
      'config mta.dkim',
    ]);
    expect(run.exitCode).toBe(0);
  });
});

describe('herald start without --strict', () => {
  it('prints each unsafe setting as a warning on stderr before running', async () => {
    const { spawn } = await import('node:child_process');
    const { resolve } = await import('node:path');
    const cwd = mkdtempSync(join(tmpdir(), 'herald-start-'));
    const child = spawn(
      process.execPath,
      [resolve(import.meta.dirname, '../bin/herald.js'), 'start', '--roles', 'mta', '--progress-interval', '0'],
      { cwd, env: { ...process.env, HERALD_DATABASE_URL: '', HERALD_CONFIG: '' }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    await new Promise<void>((running, failed) => {
      child.stderr.on('data', (chunk) => {
        stderr += String(chunk);
        if (stderr.includes(': running mta on ')) running();
      });
      child.once('exit', (code) => failed(new Error(`exited ${code}: ${stderr}`)));
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('warning: 4 settings are unsafe for real mail (herald start --strict refuses them):');
    expect(stderr.indexOf('- mta.heloName: EHLO announces "localhost"')).toBeLessThan(
      stderr.indexOf(': running mta on '),
    );
  }, 60_000);
});
