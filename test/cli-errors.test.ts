import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';

// Issue 13 item 9: every error carries its code and honours --json with one shape
// {"error":{"code","message",…}}; typos in configuration and definitions name the line and the key meant.

const dir = mkdtempSync(join(tmpdir(), 'herald-errors-'));

describe('argument-parser errors and --version', () => {
  it('an unknown option is CLI_USAGE, on stderr and as JSON', async () => {
    const run = await runHerald('sqlite::memory:', ['lists', '--jsn', '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr.join('\n')).toMatch(/^error: CLI_USAGE: unknown option '--jsn'/m);
    expect(run.json()).toEqual([
      { error: { code: 'CLI_USAGE', message: "unknown option '--jsn'\n(Did you mean --json?)" } },
    ]);
  });

  it('a missing argument and an unknown command are CLI_USAGE', async () => {
    const missing = await runHerald('sqlite::memory:', ['delivery', 'show']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr.join('\n')).toMatch(/error: CLI_USAGE: missing required argument 'id'/);
    const unknown = await runHerald('sqlite::memory:', ['delivry', '--json']);
    expect(unknown.json()[0]).toMatchObject({ error: { code: 'CLI_USAGE' } });
  });

  it('--version prints the version', async () => {
    const run = await runHerald('sqlite::memory:', ['--version']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toEqual(['0.1.0']);
  });
});

describe('typos name the line and the key meant', () => {
  it('configuration', async () => {
    const file = join(dir, 'typo.yaml');
    writeFileSync(file, 'mta:\n  heloName: mx.example.net\n  maxConnectionPerMx: 3\ntrackng:\n  port: 1\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check', '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json()[0]).toEqual({
      error: {
        code: 'CONFIG_INVALID',
        message: `${file}:3: unknown key mta.maxConnectionPerMx (did you mean maxConnectionsPerMx?); ${file}:4: unknown key trackng (did you mean tracking?)`,
      },
    });
  });

  it('a wrong value names its line', async () => {
    const file = join(dir, 'value.yaml');
    writeFileSync(file, 'tracking:\n  port: 1\nmta:\n  claimBatchSize: 0\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check']);
    expect(run.stderr.join('\n')).toContain(`${file}:4: mta.claimBatchSize: Number must be greater than or equal to 1`);
  });
});

describeEachDialect('error codes of commands', ({ url }) => {
  it('a delivery definition typo: DELIVERY_INVALID with line and "did you mean"', async () => {
    const file = join(dir, 'def.yaml');
    writeFileSync(file, 'name: n\nfrom: news@example.com\nsubjet: Hello\ntext: hi\n');
    const run = await runHerald(url(), ['delivery', 'create', '-f', file, '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json()[0]).toMatchObject({ error: { code: 'DELIVERY_INVALID' } });
    expect(run.stderr.join('\n')).toContain(`${file}:3: unknown key subjet (did you mean subject?)`);
  });

  it('a failed prepare is PREPARATION_FAILED with the cause', async () => {
    const created = await runHerald(url(), [
      'delivery',
      'create',
      '--name',
      'no-list',
      '--from',
      'news@example.com',
      '--subject',
      'Hi',
      '--text-file',
      writeText('hi'),
      '--json',
    ]);
    const id = created.json<{ id: number }>()[0]!.id;
    const run = await runHerald(url(), ['delivery', 'prepare', String(id), '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json()).toEqual([
      {
        error: {
          code: 'PREPARATION_FAILED',
          message: `delivery ${id} preparation failed: DELIVERY_NO_TARGET: delivery ${id} has no target list`,
          deliveryId: id,
          cause: 'DELIVERY_NO_TARGET',
          state: 'preparation_failed',
        },
      },
    ]);
    expect(run.stderr.join('\n')).toMatch(/^error: PREPARATION_FAILED: /m);
  });

  it('a port in use is PORT_IN_USE naming the role and the configuration key', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const run = await runHerald(url(), ['start', '--roles', 'tracking'], { tracking: { port } });
      expect(run.exitCode).toBe(1);
      expect(run.stderr.join('\n')).toContain(
        `error: PORT_IN_USE: role tracking cannot listen on 127.0.0.1:${port}: the port is in use (another herald start?); stop the other process or change tracking.port`,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

function writeText(text: string): string {
  const file = join(dir, `body-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, text);
  return file;
}
