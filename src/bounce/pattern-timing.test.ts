import { describe, expect, it } from 'vitest';
import { describeSlowPattern, slowPatterns } from './pattern-timing.ts';

describe('timing rule patterns for catastrophic backtracking', () => {
  it('keeps the event loop turning while a pattern that never ends is timed', async () => {
    let turns = 0;
    let done = false;
    const turn = (): void => {
      turns++;
      if (!done) setTimeout(turn, 5);
    };
    setTimeout(turn, 5);
    const slow = await slowPatterns(['(q+q+)+y']);
    done = true;
    expect(slow).toEqual([{ pattern: '(q+q+)+y' }]);
    // A synchronous check would have held every timer until it returned.
    expect(turns).toBeGreaterThan(0);
  }, 60_000);

  it('kills the child on each pattern that never ends and goes on with the rest', async () => {
    const patterns = ['user (unknown|not found)', '(w+w+)+y', 'mailbox .{1,40}? full', '(k|k)+$', 'blocked'];
    const slow = await slowPatterns(patterns);
    expect(slow.map((s) => s.pattern)).toEqual(['(w+w+)+y', '(k|k)+$']);
    expect(describeSlowPattern(slow[0]!)).toMatch(/^backtracks catastrophically \(still running after 500 ms/);
  }, 60_000);
});
