import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';

describe('herald config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));

  it('rejects an unknown key, naming it', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'mta:\n  maxConnectionPerMx: 3\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check', '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json()[0]).toMatchObject({ error: { code: 'CONFIG_INVALID', message: expect.stringContaining('unknown key mta.maxConnectionPerMx') } });
  });

  it('reports a wrong value with its path', async () => {
    const file = join(dir, 'value.yaml');
    writeFileSync(file, 'mta:\n  maxConnectionsPerMx: -1\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check']);
    expect(run.stderr.join('\n')).toMatch(/mta\.maxConnectionsPerMx: Number must be greater than or equal to 1/);
  });

  it('shows the effective configuration with secrets masked', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'database:\n  url: "postgres://herald:hunter2@db.example/herald"\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'show', '--json']);
    const [shown] = run.json<{ database: { url: string }; mta: { maxConnectionsPerMx: number } }>();
    expect(shown!.database.url).toBe('postgres://herald:***@db.example/herald');
    expect(run.stdout.join('')).not.toContain('hunter2');
    expect(shown!.mta.maxConnectionsPerMx).toBe(10);
  });
});
