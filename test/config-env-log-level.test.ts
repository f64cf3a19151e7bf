import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// HERALD_LOG_LEVEL=verbose (or a typo of any level) stopped every command that opens the database
// with "error: default level:verbose must be included in custom levels", pino's words, naming
// neither the variable nor the levels there are.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');

function herald(level: string): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'herald-log-level-'));
  const run = spawnSync(process.execPath, [heraldBin, 'db', 'status', '--json'], {
    cwd: dir,
    env: {
      ...process.env,
      HERALD_CONFIG: '',
      HERALD_DATABASE_URL: `sqlite:${join(dir, 'herald.db')}`,
      HERALD_LOG_LEVEL: level,
    },
    encoding: 'utf8',
  });
  return { status: run.status, stderr: run.stderr };
}

describe('HERALD_LOG_LEVEL', () => {
  it('refuses a value that is not a level, naming the variable and the levels', () => {
    const run = herald('verbose');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'error: CONFIG_INVALID: HERALD_LOG_LEVEL is "verbose", not a log level: choose among trace, debug, info, warn, error, fatal, silent',
    );
  });

  it('still takes a level in any case (DEBUG)', () => {
    const run = herald('DEBUG');
    expect(run.stderr).not.toContain('HERALD_LOG_LEVEL');
    expect(run.stderr).not.toContain('custom levels');
  });
});
