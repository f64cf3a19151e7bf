import { describe, expect, it } from 'vitest';
import { workflowHealth, workflowState, type HealthInput } from './health.ts';

const hour = 3_600_000;
const base: HealthInput = {
  now: 100 * hour,
  disabled: false,
  pausedAt: null,
  running: false,
  lastFinishedStatus: 'succeeded',
  lastSuccessAt: 99 * hour,
  registeredAt: 0,
  periodMs: hour,
  pausedTooLongMs: 7 * 24 * hour,
};

describe('workflowHealth', () => {
  const cases: Array<[string, Partial<HealthInput>, string]> = [
    ['recent success', {}, 'ok'],
    ['last run failed', { lastFinishedStatus: 'failed' }, 'failed'],
    ['no success within twice the period', { lastSuccessAt: 97 * hour }, 'overdue'],
    ['exactly twice the period is still ok', { lastSuccessAt: 98 * hour }, 'ok'],
    ['never succeeded, registered long ago', { lastFinishedStatus: undefined, lastSuccessAt: null }, 'overdue'],
    [
      'never ran, just registered',
      { lastFinishedStatus: undefined, lastSuccessAt: null, registeredAt: 99.5 * hour },
      'ok',
    ],
    ['paused a day', { pausedAt: 76 * hour, lastSuccessAt: 0 }, 'ok'],
    ['paused eight days', { pausedAt: 100 * hour - 8 * 24 * hour }, 'paused_too_long'],
    ['only skipped steps', { lastFinishedStatus: 'skipped', lastSuccessAt: null }, 'not_configured'],
  ];
  it.each(cases)('%s', (_name, change, expected) => {
    expect(workflowHealth({ ...base, ...change })).toBe(expected);
  });
});

describe('workflowState', () => {
  it('orders disabled, paused, running, failed, idle', () => {
    expect(workflowState({ disabled: true, pausedAt: 1, running: true, lastFinishedStatus: 'failed' })).toBe(
      'disabled',
    );
    expect(workflowState({ disabled: false, pausedAt: 1, running: true, lastFinishedStatus: 'failed' })).toBe('paused');
    expect(workflowState({ disabled: false, pausedAt: null, running: true, lastFinishedStatus: 'failed' })).toBe(
      'running',
    );
    expect(workflowState({ disabled: false, pausedAt: null, running: false, lastFinishedStatus: 'failed' })).toBe(
      'failed',
    );
    expect(workflowState({ disabled: false, pausedAt: null, running: false, lastFinishedStatus: 'succeeded' })).toBe(
      'idle',
    );
  });
});
