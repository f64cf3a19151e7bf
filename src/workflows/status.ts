import type { HeraldConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';
import { latestRunsByWorkflow, listWorkflowRows } from './workflow-store.ts';
import type { ScheduledWorkflow } from './engine.ts';
import { workflowHealth, workflowState } from './health.ts';
import { findDueSlot, schedulePeriod } from './schedule.ts';
import type { WorkflowHealth, WorkflowState } from './types.ts';
import type { WorkflowRow, WorkflowRunRow } from '../store/tables.ts';

// What `herald workflows list` (and later the dashboard) shows per workflow. Field names are a
// stable --json contract: add fields, never rename them.

export interface RunView {
  id: number;
  status: WorkflowRunRow['status'];
  trigger: WorkflowRunRow['trigger'];
  holder: string;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  missedSlots: number;
  startStep: number;
  failedStep: number | null;
  restartOf: number | null;
  error: string | null;
}

export interface WorkflowStatus {
  name: string;
  description: string;
  state: WorkflowState;
  health: WorkflowHealth;
  schedule: string;
  timezone: string;
  enabled: boolean;
  pausedAt: string | null;
  nextRunAt: string | null;
  lastRun: RunView | null;
  lastSuccessAt: string | null;
  lastError: string | null;
  leaseHolder: string | null;
}

export function runView(run: WorkflowRunRow): RunView {
  return {
    id: run.id,
    status: run.status,
    trigger: run.trigger,
    holder: run.holder,
    startedAt: iso(run.started_at),
    finishedAt: run.finished_at === null ? null : iso(run.finished_at),
    durationMs: run.finished_at === null ? null : run.finished_at - run.started_at,
    missedSlots: run.missed_slots,
    startStep: run.start_step,
    failedStep: run.failed_step,
    restartOf: run.restart_of,
    error: run.error,
  };
}

export async function describeWorkflows(input: {
  store: Store;
  workflows: ScheduledWorkflow[];
  settings: HeraldConfig['workflows'];
  now: number;
  activeHere: Set<string>;
}): Promise<WorkflowStatus[]> {
  const { now, settings } = input;
  const rows = new Map((await listWorkflowRows(input.store)).map((row) => [row.name, row]));
  const runs = await latestRunsByWorkflow(input.store);
  return input.workflows.map(({ definition, schedule, enabled }) => {
    const row = rows.get(definition.name);
    const latest = runs.get(definition.name);
    const pausedAt = row?.paused_at ?? null;
    const last = latest?.last;
    const orphaned =
      last?.status === 'running' &&
      !input.activeHere.has(definition.name) &&
      isOrphaned(last, row, now, settings.leaseSeconds * 1000);
    const running = input.activeHere.has(definition.name) || (last?.status === 'running' && !orphaned);
    const lastFinishedStatus = orphaned
      ? 'failed'
      : (latest?.lastFinished?.status as Exclude<WorkflowRunRow['status'], 'running'> | undefined);
    const orphanError = orphaned
      ? `interrupted: ${last.holder} stopped renewing its lease during run ${last.id} (recorded as failed by the next engine tick, \`herald workflows run ${definition.name}\` or \`restart ${definition.name}\`)`
      : null;
    const lastHandled = row?.last_due_at ?? row?.created_at ?? now;
    const nextRun =
      !enabled || pausedAt !== null
        ? undefined
        : findDueSlot(schedule, lastHandled, now)
          ? now
          : schedule.nextAfter(lastHandled);
    return {
      name: definition.name,
      description: definition.description,
      state: workflowState({ disabled: !enabled, pausedAt, running, lastFinishedStatus }),
      health: workflowHealth({
        now,
        disabled: !enabled,
        pausedAt,
        running,
        lastFinishedStatus,
        lastSuccessAt: latest?.lastSuccessAt ?? null,
        registeredAt: row?.created_at ?? now,
        periodMs: schedulePeriod(schedule, now),
        pausedTooLongMs: settings.pausedTooLongDays * 86_400_000,
      }),
      schedule: schedule.expression,
      timezone: schedule.timezone,
      enabled,
      pausedAt: pausedAt === null ? null : iso(pausedAt),
      nextRunAt: nextRun === undefined ? null : iso(nextRun),
      lastRun: latest?.last ? runView(latest.last) : null,
      lastSuccessAt: latest?.lastSuccessAt ? iso(latest.lastSuccessAt) : null,
      lastError: orphanError ?? (latest?.lastFinished?.status === 'failed' ? latest.lastFinished.error : null),
      leaseHolder: row?.lease_holder && (row.lease_expires_at ?? 0) > now ? row.lease_holder : null,
    };
  });
}

/**
 * A run still marked running whose process died, before any engine records it: its holder's lease
 * expired, or it is not the lease holder and started longer than a lease ago (a run that has just
 * started may not show its lease yet: the workflow row is read before the runs).
 */
function isOrphaned(
  run: WorkflowRunRow,
  row: Pick<WorkflowRow, 'lease_holder' | 'lease_expires_at'> | undefined,
  now: number,
  leaseMs: number,
): boolean {
  if (row?.lease_holder === run.holder) return (row.lease_expires_at ?? 0) <= now;
  return run.started_at + leaseMs <= now;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
