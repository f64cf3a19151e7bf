import { describe, expect, it } from 'vitest';
import { AppError } from '../common/errors.ts';
import { assertTransition, canTransition, statesLeadingTo } from './state-machine.ts';

describe('delivery state machine', () => {
  it.each([
    ['edited', 'preparing', true],
    ['preparing', 'prepared', true],
    ['preparing', 'preparation_failed', true],
    ['prepared', 'start_pending', true],
    ['start_pending', 'in_progress', true],
    ['in_progress', 'finished', true],
    ['in_progress', 'paused', true],
    ['paused', 'in_progress', true],
    ['paused', 'finished', true],
    ['edited', 'in_progress', false],
    ['finished', 'in_progress', false],
    ['deleted', 'edited', false],
    ['preparation_failed', 'preparing', true],
  ] as const)('%s → %s is %s', (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
  });

  it('names the allowed next states when a transition is refused', () => {
    try {
      assertTransition(7, 'finished', 'in_progress');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('INVALID_STATE');
      expect((error as AppError).message).toContain('delivery 7 is finished');
      expect((error as AppError).message).toContain('deleted');
    }
  });

  it('lists the states leading to a target', () => {
    expect(statesLeadingTo('preparing').sort()).toEqual(['edited', 'preparation_failed', 'prepared']);
  });
});
