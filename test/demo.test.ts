import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// The main job, as an operator runs it: `herald demo --json` on a fresh data directory, no configuration.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');

it('herald demo --json sends a personalized delivery and ends every recipient sent, failed or excluded', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'herald-demo-'));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [heraldBin, 'demo', '--json', '--recipients', '600', '--validity-seconds', '6'],
    {
      cwd,
      env: { ...process.env, HERALD_DATABASE_URL: '', HERALD_CONFIG: '', HERALD_LOG_LEVEL: 'warn' },
      timeout: 120_000,
    },
  );
  const lines = stdout.trim().split('\n');
  const summary = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown> & {
    byReason: Record<string, number>;
  };
  expect(Object.keys(summary)).toEqual(
    expect.arrayContaining([
      'deliveryId',
      'state',
      'total',
      'sent',
      'failed',
      'ignored',
      'pending',
      'excluded',
      'retried',
      'byReason',
      'elapsedMs',
      'msgsPerSec',
    ]),
  );
  expect(summary.state).toBe('finished');
  expect(summary.pending).toBe(0);
  expect((summary.sent as number) + (summary.failed as number) + (summary.ignored as number)).toBe(summary.total);
  expect((summary.total as number) + (summary.excluded as number)).toBe(600);
  // The simulator's scripted failures show up qualified.
  expect(summary.byReason.user_unknown).toBeGreaterThan(0);
  expect(summary.byReason.invalid_domain).toBeGreaterThan(0);
  // Greylisted and rate-limited recipients needed more than one attempt and got through.
  expect(summary.retried).toBeGreaterThan(0);
  expect(summary.sent).toBeGreaterThan(400);
  // Throttling at work: the summary names the MX rule that bound (the simulator's rate-limited host).
  const shaping = summary.shaping as {
    rulesVersion: string;
    bound: Array<{ rule: string; limit: string; reason: string }>;
  };
  expect(shaping.bound.map((entry) => entry.rule)).toContain('sim-ratelimit');
  expect(shaping.bound.find((entry) => entry.rule === 'sim-ratelimit')?.limit).toBe('maxMessagesPerHour');
  // The doctor ran over the finished demo: at this size nothing is stuck, no domain is suspended and
  // hard bounces stay under its 5 % threshold, so a finding here would be a false alarm.
  expect(summary.doctor).toEqual([]);
});
