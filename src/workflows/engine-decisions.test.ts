import { describe, expect, it } from 'vitest';
import { decideStart, failureNotification, interruptedRuns, restartStep } from './engine-decisions.ts';
import { compileSchedule } from './schedule.ts';

const hour = 3_600_000;
const t0 = Date.UTC(2026, 2, 1, 0, 0);
const hourly = { schedule: compileSchedule('0 * * * *', 'UTC', 'test'), enabled: true };
const row = (lastDueAt: number | null, pausedAt: number | null = null) => ({
  created_at: t0,
  last_due_at: lastDueAt,
  paused_at: pausedAt,
});

describe('decideStart', () => {
  it.each([
    ['due once', hourly, row(t0), false, t0 + hour + 1, { kind: 'start', slot: t0 + hour, missed: 1 }],
    [
      'after downtime: one run for the missed slots',
      hourly,
      row(t0),
      false,
      t0 + 3 * hour + 5,
      { kind: 'start', slot: t0 + 3 * hour, missed: 3 },
    ],
    ['not yet due', hourly, row(t0 + hour), false, t0 + hour + 1, { kind: 'skip', why: 'not due' }],
    ['paused', hourly, row(t0, t0), false, t0 + 2 * hour, { kind: 'skip', why: 'paused' }],
    ['disabled', { ...hourly, enabled: false }, row(t0), false, t0 + 2 * hour, { kind: 'skip', why: 'disabled' }],
    ['running here', hourly, row(t0), true, t0 + 2 * hour, { kind: 'skip', why: 'running here' }],
    ['no row yet', hourly, undefined, false, t0 + 2 * hour, { kind: 'skip', why: 'unknown' }],
    [
      'never due before: counted from creation',
      hourly,
      row(null),
      false,
      t0 + hour,
      { kind: 'start', slot: t0 + hour, missed: 1 },
    ],
  ] as const)('%s', (_name, workflow, workflowRow, runningHere, now, expected) => {
    expect(decideStart(workflow, workflowRow, runningHere, now)).toEqual(expected);
  });
});

describe('restartStep', () => {
  const definition = { steps: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] } as never;
  it.each([
    [{ failed_step: 1, start_step: 0 }, 1],
    [{ failed_step: null, start_step: 2 }, 2],
    // the definition lost steps since the failure: restart at its last one
    [{ failed_step: 7, start_step: 0 }, 2],
  ])('%o → step %i', (last, step) => {
    expect(restartStep(last, definition)).toBe(step);
  });
});

describe('interruptedRuns', () => {
  it("leaves this engine's own running runs alone", () => {
    const orphans = [
      { holder: 'node-a/1', workflow: 'cleanup' },
      { holder: 'node-a/1', workflow: 'stats' },
      { holder: 'node-b/2', workflow: 'tracking' },
    ];
    expect(interruptedRuns(orphans, 'node-a/1', new Set(['cleanup']))).toEqual([orphans[1], orphans[2]]);
  });
});

describe('failureNotification', () => {
  it('names the failed step and the times in ISO 8601', () => {
    const definition = { steps: [{ name: 'purge-logs' }, { name: 'vacuum' }] } as never;
    expect(
      failureNotification(
        { workflow: 'cleanup', id: 12, failedStep: 1, error: 'disk full', startedAt: t0 },
        definition,
        'node-a',
        t0 + 1_000,
      ),
    ).toEqual({
      event: 'workflow.failed',
      workflow: 'cleanup',
      runId: 12,
      step: 1,
      stepName: 'vacuum',
      error: 'disk full',
      nodeId: 'node-a',
      startedAt: '2026-03-01T00:00:00.000Z',
      failedAt: '2026-03-01T00:00:01.000Z',
    });
  });
});
