import type { WorkflowHealth, WorkflowState } from './types.ts';
import type { RunStatus } from '../store/tables.ts';

// Pure: what `herald workflows list` and the dashboard show for one workflow.

export interface HealthInput {
  now: number;
  disabled: boolean;
  pausedAt: number | null;
  running: boolean;
  /** Status of the latest run that is not running any more. */
  lastFinishedStatus: Exclude<RunStatus, 'running'> | undefined;
  lastSuccessAt: number | null;
  /** When the workflow was first registered: the reference before any success. */
  registeredAt: number;
  periodMs: number;
  pausedTooLongMs: number;
}

export function workflowState(
  input: Pick<HealthInput, 'disabled' | 'pausedAt' | 'running' | 'lastFinishedStatus'>,
): WorkflowState {
  if (input.disabled) return 'disabled';
  if (input.pausedAt !== null) return 'paused';
  if (input.running) return 'running';
  if (input.lastFinishedStatus === 'failed') return 'failed';
  return 'idle';
}

export function workflowHealth(input: HealthInput): WorkflowHealth {
  if (input.disabled) return 'ok';
  if (input.pausedAt !== null) return input.now - input.pausedAt > input.pausedTooLongMs ? 'paused_too_long' : 'ok';
  if (input.lastFinishedStatus === 'failed') return 'failed';
  if (input.lastFinishedStatus === 'skipped') return 'not_configured';
  const reference = input.lastSuccessAt ?? input.registeredAt;
  // "Overdue": no success within twice its period, whatever the reason (engine down, lease stuck, slow runs).
  if (input.now - reference > 2 * input.periodMs) return 'overdue';
  return 'ok';
}
