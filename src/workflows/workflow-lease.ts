import type { Clock } from '../common/clock.ts';
import { AppError } from '../common/errors.ts';
import type { Store } from '../store/database.ts';
import {
  acquireLease,
  ensureWorkflowRows,
  getWorkflowRow,
  listRuns,
  releaseLease,
  renewLease,
} from './workflow-store.ts';

// Work done outside the engine that must never overlap a workflow's run (`herald rules update` and
// the deliverability-update workflow): it takes the very lease the engine takes for that workflow
// (workflows.lease_holder), so the engine skips its slot meanwhile and the work refuses to start
// while a run holds it.

export interface WorkflowLeaseOptions {
  store: Store;
  /** The workflow whose lease is taken, e.g. 'deliverability-update'. */
  workflow: string;
  /** Who holds it, shown to whoever finds it taken (the engine's holders are `nodeId/random`). */
  holder: string;
  clock: Clock;
  /** workflows.leaseSeconds × 1000, as the engine uses; renewed every third of it while `action` runs. */
  leaseMs: number;
}

/** Runs `action` holding the workflow's lease, released afterwards whatever the way; INVALID_STATE when it is taken. */
export async function withWorkflowLease<T>(options: WorkflowLeaseOptions, action: () => Promise<T>): Promise<T> {
  const { store, workflow, holder, clock, leaseMs } = options;
  await ensureWorkflowRows(store, [workflow], clock.now());
  if (!(await acquireLease(store, { name: workflow, holder, now: clock.now(), leaseMs })))
    throw await leaseTakenError(store, workflow);
  const renewal = setInterval(
    () => void renewLease(store, workflow, holder, clock.now(), leaseMs).catch(() => false),
    Math.max(1_000, Math.floor(leaseMs / 3)),
  );
  renewal.unref();
  try {
    return await action();
  } finally {
    clearInterval(renewal);
    await releaseLease(store, workflow, holder, clock.now());
  }
}

/** "workflow X is running right now (run #12, lease held by node-a/3f2a since <ISO>)". */
async function leaseTakenError(store: Store, workflow: string): Promise<AppError> {
  const row = await getWorkflowRow(store, workflow);
  const holder = row?.lease_holder ?? 'another node';
  const [last] = await listRuns(store, workflow, 1);
  if (last && last.status === 'running' && last.holder === holder) {
    return new AppError(
      'INVALID_STATE',
      `workflow ${workflow} is running right now (run #${last.id}, lease held by ${holder} since ${new Date(last.started_at).toISOString()}); try again when it has finished`,
    );
  }
  const since = row?.updated_at === undefined ? '' : ` since ${new Date(row.updated_at).toISOString()}`;
  return new AppError(
    'INVALID_STATE',
    `workflow ${workflow} is running right now (lease held by ${holder}${since}); try again when it has finished`,
  );
}
