import { describe, expect, it } from 'vitest';
import type { DeliveryState } from '../store/tables.ts';
import { decideStateChange } from './execution-state.ts';
import type { ForwardedState } from './wire.ts';

describe('decideStateChange', () => {
  const cases: Array<[DeliveryState, boolean, ForwardedState, string]> = [
    ['in_progress', true, 'paused', 'apply'],
    ['in_progress', true, 'stopped', 'apply'],
    ['in_progress', true, 'in_progress', 'already'],
    ['paused', true, 'in_progress', 'apply'],
    ['paused', true, 'stopped', 'apply'],
    ['paused', true, 'paused', 'already'],
    // Parts still arriving: finalize applies the latest target.
    ['preparing', false, 'paused', 'held'],
    ['preparing', false, 'stopped', 'held'],
    ['preparing', false, 'in_progress', 'held'],
    // Ended before the change arrived: nothing to do.
    ['finished', true, 'paused', 'final'],
    ['stopped', true, 'in_progress', 'final'],
    ['failed', true, 'stopped', 'final'],
    ['deleted', true, 'stopped', 'final'],
    // Never a received delivery's state, but the state machine says no.
    ['start_pending', true, 'paused', 'invalid'],
  ];
  it.each(cases)('%s (finalized %s) → %s: %s', (current, finalized, target, expected) => {
    expect(decideStateChange(current, finalized, target).kind).toBe(expected);
  });
});
