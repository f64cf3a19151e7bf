import { describe, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';

// `herald start --progress-interval 3600000` (an hour, typed in milliseconds) started: past 2^31 ms
// Node's timer falls back to 1 ms (TimeoutOverflowWarning), and the progress reader queried the
// database back to back, printing its lines as fast. It is now refused, naming the range.

describe('herald start --progress-interval', () => {
  for (const value of ['3600000', '0.001'])
    it(`refuses ${value}, naming seconds and the range`, async () => {
      const run = await runHerald('sqlite::memory:', ['start', '--roles', 'workflows', '--progress-interval', value]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr.join('\n')).toContain(
        `INPUT_INVALID: --progress-interval must be a number of seconds from 1 to 86400, or 0 for none (got "${value}")`,
      );
    }, 15_000);
});
