import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';

// Intervals and timeouts had no upper bound. Node's timers hold at most 2^31 − 1 ms (about 24.8
// days): `workflows.tickSeconds: 3000000` made the engine tick every millisecond (a
// TimeoutOverflowWarning each time, the database queried back to back), and PostgreSQL refuses a
// lock_timeout past it, so `database.lockTimeoutMs: 3000000000` failed every command with
// "MIGRATION_FAILED: migration unknown failed". Both are now refused in herald.yaml, line and key named.

describe('durations past what a timer holds', () => {
  it('are refused with file, line and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-timers-'));
    const file = join(dir, 'herald.yaml');
    writeFileSync(
      file,
      [
        'database:',
        '  lockTimeoutMs: 3000000000',
        'workflows:',
        '  tickSeconds: 3000000',
        'quarantine:',
        '  sweepIntervalMinutes: 40000',
      ].join('\n'),
    );
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check']);
    expect(run.exitCode).toBe(1);
    const stderr = run.stderr.join('\n');
    expect(stderr).toContain(`${file}:2: database.lockTimeoutMs: at most 2147483647 (about 24 days`);
    expect(stderr).toContain(`${file}:4: workflows.tickSeconds: at most 2147483 (about 24 days`);
    expect(stderr).toContain(`${file}:6: quarantine.sweepIntervalMinutes: at most 35791 (about 24 days`);
  });

  it('take the longest value a timer holds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-timers-'));
    const file = join(dir, 'herald.yaml');
    writeFileSync(file, 'workflows:\n  tickSeconds: 2147483\nquarantine:\n  sweepIntervalMinutes: 35791\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check', '--json']);
    expect(run.stderr.join('\n')).not.toContain('CONFIG_INVALID');
  });
});
