import { AppError } from '../common/errors.ts';
import type { WorkflowRow, WorkflowRunRow } from '../store/tables.ts';
import type { FailureNotification } from './notify-webhook.ts';
import { findDueSlot, type Schedule } from './schedule.ts';
import type { WorkflowDefinition } from './types.ts';

// The workflow engine's decisions, pure (time passed in): whether a scheduled workflow starts on
// this tick, where a restart begins, which running runs are orphans of a dead holder, and the
// failure notification a failed run sends.

export type StartDecision =
  | { kind: 'start'; slot: number; missed: number }
  | { kind: 'skip'; why: 'disabled' | 'running here' | 'unknown' | 'paused' | 'not due' };

/** A scheduled workflow starts when enabled, not running here, not paused and a slot is due. */
export function decideStart(
  workflow: { schedule: Schedule; enabled: boolean },
  row: Pick<WorkflowRow, 'paused_at' | 'last_due_at' | 'created_at'> | undefined,
  runningHere: boolean,
  now: number,
): StartDecision {
  if (!workflow.enabled) return { kind: 'skip', why: 'disabled' };
  if (runningHere) return { kind: 'skip', why: 'running here' };
  if (!row) return { kind: 'skip', why: 'unknown' };
  if (row.paused_at !== null) return { kind: 'skip', why: 'paused' };
  // After downtime the workflow runs once for every slot it missed.
  const due = findDueSlot(workflow.schedule, row.last_due_at ?? row.created_at, now);
  return due ? { kind: 'start', slot: due.slot, missed: due.missed } : { kind: 'skip', why: 'not due' };
}

/** The step a restart begins at: the failed one (the start step when none is recorded), within the definition. */
export function restartStep(
  last: Pick<WorkflowRunRow, 'failed_step' | 'start_step'>,
  definition: Pick<WorkflowDefinition, 'steps'>,
): number {
  return Math.min(last.failed_step ?? last.start_step, definition.steps.length - 1);
}

/**
 * The step an operator chose to restart from, by index or name; throws INPUT_INVALID naming the
 * steps when it is neither. Restarting from a chosen step needs no failed run: steps are idempotent.
 */
export function chosenRestartStep(
  from: number | string,
  definition: Pick<WorkflowDefinition, 'name' | 'steps'>,
): number {
  const names = definition.steps.map((step, index) => `${index} ${step.name}`).join(', ');
  const byName = definition.steps.findIndex((step) => step.name === from);
  if (byName >= 0) return byName;
  const index = typeof from === 'number' ? from : /^\d+$/.test(from) ? Number(from) : Number.NaN;
  if (Number.isInteger(index) && index >= 0 && index < definition.steps.length) return index;
  throw new AppError(
    'INPUT_INVALID',
    `fromStep: workflow ${definition.name} has no step ${JSON.stringify(from)} (steps: ${names})`,
  );
}

/** Orphaned runs to mark interrupted: not the ones this engine is running itself. */
export function interruptedRuns<R extends Pick<WorkflowRunRow, 'holder' | 'workflow'>>(
  orphans: readonly R[],
  holder: string,
  runningHere: ReadonlySet<string> | ReadonlyMap<string, unknown>,
): R[] {
  return orphans.filter((run) => !(run.holder === holder && runningHere.has(run.workflow)));
}

/** The body of the failure webhook for one failed run. */
export function failureNotification(
  run: { workflow: string; id: number; failedStep: number | null; error: string; startedAt: number },
  definition: Pick<WorkflowDefinition, 'steps'> | undefined,
  nodeId: string,
  now: number,
): FailureNotification {
  return {
    event: 'workflow.failed',
    workflow: run.workflow,
    runId: run.id,
    step: run.failedStep,
    stepName: run.failedStep === null ? null : (definition?.steps[run.failedStep]?.name ?? null),
    error: run.error,
    nodeId,
    startedAt: new Date(run.startedAt).toISOString(),
    failedAt: new Date(now).toISOString(),
  };
}
