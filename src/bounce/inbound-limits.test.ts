import { describe, expect, it } from 'vitest';
import { createContentBudget } from './inbound-limits.ts';

describe('createContentBudget', () => {
  it("refuses past one client's share or the total, counts nothing refused, and frees on release", () => {
    const budget = createContentBudget(150, 60);
    expect(budget.reserve('192.0.2.1', 50)).toBeUndefined();
    // Before: only the total was counted, and a second 50 from the same address went in.
    expect(budget.reserve('192.0.2.1', 20)).toBe('client');
    expect(budget.reserve('2001:db8:1:2::1', 40)).toBeUndefined();
    expect(budget.reserve('2001:db8:1:2::2', 30)).toBe('client');
    expect(budget.reserve('192.0.2.3', 61)).toBe('total');
    expect(budget.held).toBe(90);
    budget.release('192.0.2.1', 50);
    expect(budget.reserve('::ffff:192.0.2.1', 60)).toBeUndefined();
    expect(budget.held).toBe(100);
  });
});
