import type { Store } from '../store/database.ts';
import type {
  RunStatus,
  RunTrigger,
  StepStatus,
  WorkflowRow,
  WorkflowRunRow,
  WorkflowStepLogRow,
  WorkflowStepRow,
} from '../store/tables.ts';

// Storage of the workflow engine: workflow rows (pause, last handled slot, lease), runs, steps and
// step logs. The lease is taken by one conditional UPDATE, so on PostgreSQL two engines racing for
// it serialize on the row lock and the loser re-checks the condition against the winner's row.

export async function ensureWorkflowRows(store: Store, names: string[], now: number): Promise<void> {
  const db = store.db;
  for (const name of names) {
    // A new workflow starts counting its schedule from now: no burst of "missed" runs on first install.
    await db
      .insertInto('workflows')
      .values({
        name,
        paused_at: null,
        last_due_at: now,
        lease_holder: null,
        lease_expires_at: null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }
}

export async function listWorkflowRows(store: Store): Promise<WorkflowRow[]> {
  return store.db.selectFrom('workflows').selectAll().orderBy('name').execute();
}

export async function getWorkflowRow(store: Store, name: string): Promise<WorkflowRow | undefined> {
  return store.db.selectFrom('workflows').selectAll().where('name', '=', name).executeTakeFirst();
}

/**
 * Workflows whose last handled slot is more than `toleranceMs` after `now` (this node's clock went
 * back, or the node that handled it was set ahead) count from `now` again; returns their names.
 */
export async function resetSlotsAhead(store: Store, now: number, toleranceMs: number): Promise<string[]> {
  // Read first: called every tick, it must not take SQLite's write lock when there is nothing to do.
  const ahead = await store.db
    .selectFrom('workflows')
    .select('name')
    .where('last_due_at', '>', now + toleranceMs)
    .execute();
  if (ahead.length === 0) return [];
  const rows = await store.db
    .updateTable('workflows')
    .set({ last_due_at: now, updated_at: now })
    .where('last_due_at', '>', now + toleranceMs)
    .returning('name')
    .execute();
  return rows.map((row) => row.name);
}

export interface LeaseRequest {
  name: string;
  holder: string;
  now: number;
  leaseMs: number;
  /** Scheduled runs claim their slot with the lease: taken only if the slot is newer than the last handled one. */
  slot?: number;
}

/** Takes the lease of a free (or expired) workflow; true when this holder got it. */
export async function acquireLease(store: Store, request: LeaseRequest): Promise<boolean> {
  const { name, holder, now, leaseMs, slot } = request;
  let query = store.db
    .updateTable('workflows')
    .set({ lease_holder: holder, lease_expires_at: now + leaseMs, updated_at: now })
    .where('name', '=', name)
    .where((eb) => eb.or([eb('lease_holder', 'is', null), eb('lease_expires_at', '<=', now)]));
  if (slot !== undefined) {
    query = query
      .set({ last_due_at: slot })
      .where('paused_at', 'is', null)
      .where((eb) => eb.or([eb('last_due_at', 'is', null), eb('last_due_at', '<', slot)]));
  }
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Extends a lease this holder still has; false when it expired and someone else took it. */
export async function renewLease(
  store: Store,
  name: string,
  holder: string,
  now: number,
  leaseMs: number,
): Promise<boolean> {
  const result = await store.db
    .updateTable('workflows')
    .set({ lease_expires_at: now + leaseMs, updated_at: now })
    .where('name', '=', name)
    .where('lease_holder', '=', holder)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function releaseLease(store: Store, name: string, holder: string, now: number): Promise<void> {
  await store.db
    .updateTable('workflows')
    .set({ lease_holder: null, lease_expires_at: null, updated_at: now })
    .where('name', '=', name)
    .where('lease_holder', '=', holder)
    .execute();
}

export async function setPaused(store: Store, name: string, pausedAt: number | null, now: number): Promise<boolean> {
  const update =
    pausedAt === null
      ? { paused_at: null, last_due_at: now, updated_at: now }
      : { paused_at: pausedAt, updated_at: now };
  let query = store.db.updateTable('workflows').set(update).where('name', '=', name);
  // Resuming skips the slots missed while paused: the operator paused on purpose.
  query = pausedAt === null ? query.where('paused_at', 'is not', null) : query.where('paused_at', 'is', null);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export interface NewRun {
  workflow: string;
  trigger: RunTrigger;
  holder: string;
  scheduledFor: number | null;
  missedSlots: number;
  startStep: number;
  restartOf: number | null;
  now: number;
}

export async function insertRun(store: Store, run: NewRun): Promise<number> {
  const row = await store.db
    .insertInto('workflow_runs')
    .values({
      workflow: run.workflow,
      status: 'running',
      trigger: run.trigger,
      holder: run.holder,
      scheduled_for: run.scheduledFor,
      missed_slots: run.missedSlots,
      start_step: run.startStep,
      restart_of: run.restartOf,
      failed_step: null,
      error: null,
      started_at: run.now,
      finished_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/** Only a run still marked running is finished: a run declared interrupted by another node stays so. */
export async function finishRun(
  store: Store,
  runId: number,
  outcome: { status: Exclude<RunStatus, 'running'>; failedStep: number | null; error: string | null; now: number },
): Promise<boolean> {
  const result = await store.db
    .updateTable('workflow_runs')
    .set({ status: outcome.status, failed_step: outcome.failedStep, error: outcome.error, finished_at: outcome.now })
    .where('id', '=', runId)
    .where('status', '=', 'running')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function insertStep(
  store: Store,
  runId: number,
  stepIndex: number,
  name: string,
  now: number,
): Promise<void> {
  await store.db
    .insertInto('workflow_steps')
    .values({
      run_id: runId,
      step_index: stepIndex,
      name,
      status: 'running',
      summary: null,
      error: null,
      started_at: now,
      finished_at: null,
    })
    .execute();
}

export async function finishStep(
  store: Store,
  runId: number,
  stepIndex: number,
  outcome: { status: Exclude<StepStatus, 'running'>; summary: string | null; error: string | null; now: number },
): Promise<void> {
  await store.db
    .updateTable('workflow_steps')
    .set({ status: outcome.status, summary: outcome.summary, error: outcome.error, finished_at: outcome.now })
    .where('run_id', '=', runId)
    .where('step_index', '=', stepIndex)
    .where('status', '=', 'running')
    .execute();
}

/** Appends one log line of a run's step; returns its id. */
export async function appendStepLog(
  store: Store,
  entry: { runId: number; stepIndex: number; level: WorkflowStepLogRow['level']; message: string; at: number },
): Promise<number> {
  const row = await store.db
    .insertInto('workflow_step_logs')
    .values({
      run_id: entry.runId,
      step_index: entry.stepIndex,
      level: entry.level,
      message: entry.message,
      at: entry.at,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/** Deletes the `count` oldest log lines of a run written after line `afterId` (the capped log's tail). */
export async function deleteOldestStepLogsAfter(
  store: Store,
  runId: number,
  afterId: number,
  count: number,
): Promise<void> {
  const oldest = store.db
    .selectFrom('workflow_step_logs')
    .select('id')
    .where('run_id', '=', runId)
    .where('id', '>', afterId)
    .orderBy('id')
    .limit(count);
  await store.db.deleteFrom('workflow_step_logs').where('id', 'in', oldest).execute();
}

export async function updateStepLogMessage(store: Store, id: number, message: string): Promise<void> {
  await store.db.updateTable('workflow_step_logs').set({ message }).where('id', '=', id).execute();
}

/** Runs marked running whose holder no longer holds a live lease: their process died. */
export async function findOrphanedRuns(store: Store, now: number): Promise<WorkflowRunRow[]> {
  return store.db
    .selectFrom('workflow_runs as r')
    .leftJoin('workflows as w', 'w.name', 'r.workflow')
    .selectAll('r')
    .where('r.status', '=', 'running')
    .where((eb) =>
      eb.or([
        eb('w.lease_holder', 'is', null),
        eb('w.lease_holder', '!=', eb.ref('r.holder')),
        eb('w.lease_expires_at', '<=', now),
      ]),
    )
    .execute();
}

/** Runs still marked running by this holder (an engine instance). */
export async function listRunningRunsOf(store: Store, holder: string): Promise<WorkflowRunRow[]> {
  return store.db
    .selectFrom('workflow_runs')
    .selectAll()
    .where('status', '=', 'running')
    .where('holder', '=', holder)
    .execute();
}

/** Marks an orphaned run failed at the step it was in (or the next one), and frees its expired lease. */
export async function markRunInterrupted(
  store: Store,
  run: WorkflowRunRow,
  error: string,
  now: number,
): Promise<number> {
  return store.db.transaction().execute(async (trx) => {
    const steps = await trx
      .selectFrom('workflow_steps')
      .select(['step_index', 'status'])
      .where('run_id', '=', run.id)
      .orderBy('step_index')
      .execute();
    const running = steps.find((s) => s.status === 'running');
    const lastDone = steps.filter((s) => s.status !== 'running').at(-1);
    const failedStep = running?.step_index ?? (lastDone ? lastDone.step_index + 1 : run.start_step);
    await trx
      .updateTable('workflow_steps')
      .set({ status: 'failed', error, finished_at: now })
      .where('run_id', '=', run.id)
      .where('status', '=', 'running')
      .execute();
    await trx
      .updateTable('workflow_runs')
      .set({ status: 'failed', failed_step: failedStep, error, finished_at: now })
      .where('id', '=', run.id)
      .where('status', '=', 'running')
      .execute();
    await trx
      .updateTable('workflows')
      .set({ lease_holder: null, lease_expires_at: null, updated_at: now })
      .where('name', '=', run.workflow)
      .where('lease_holder', '=', run.holder)
      .where('lease_expires_at', '<=', now)
      .execute();
    return failedStep;
  });
}

export async function getRun(store: Store, runId: number): Promise<WorkflowRunRow | undefined> {
  return store.db.selectFrom('workflow_runs').selectAll().where('id', '=', runId).executeTakeFirst();
}

export async function listRuns(store: Store, workflow: string, limit: number): Promise<WorkflowRunRow[]> {
  return store.db
    .selectFrom('workflow_runs')
    .selectAll()
    .where('workflow', '=', workflow)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

/** The latest run, and the latest finished run and success, of every workflow. */
export async function latestRunsByWorkflow(
  store: Store,
): Promise<Map<string, { last?: WorkflowRunRow; lastFinished?: WorkflowRunRow; lastSuccessAt: number | null }>> {
  const db = store.db;
  const lastIds = db
    .selectFrom('workflow_runs')
    .select((eb) => eb.fn.max('id').as('id'))
    .groupBy('workflow');
  const lastFinishedIds = db
    .selectFrom('workflow_runs')
    .select((eb) => eb.fn.max('id').as('id'))
    .where('status', '!=', 'running')
    .groupBy('workflow');
  const rows = await db
    .selectFrom('workflow_runs')
    .selectAll()
    .where((eb) => eb.or([eb('id', 'in', lastIds), eb('id', 'in', lastFinishedIds)]))
    .execute();
  const successes = await db
    .selectFrom('workflow_runs')
    .select(['workflow', (eb) => eb.fn.max('finished_at').as('at')])
    .where('status', '=', 'succeeded')
    .groupBy('workflow')
    .execute();
  const out = new Map<string, { last?: WorkflowRunRow; lastFinished?: WorkflowRunRow; lastSuccessAt: number | null }>();
  const entry = (name: string) => {
    let value = out.get(name);
    if (!value) out.set(name, (value = { lastSuccessAt: null }));
    return value;
  };
  for (const row of rows) {
    const value = entry(row.workflow);
    if (!value.last || row.id > value.last.id) value.last = row;
    if (row.status !== 'running' && (!value.lastFinished || row.id > value.lastFinished.id)) value.lastFinished = row;
  }
  for (const row of successes) entry(row.workflow).lastSuccessAt = row.at === null ? null : Number(row.at);
  return out;
}

export async function listSteps(store: Store, runId: number): Promise<WorkflowStepRow[]> {
  return store.db.selectFrom('workflow_steps').selectAll().where('run_id', '=', runId).orderBy('step_index').execute();
}

export async function listStepLogs(store: Store, runId: number, limit = 10_000): Promise<WorkflowStepLogRow[]> {
  return store.db
    .selectFrom('workflow_step_logs')
    .selectAll()
    .where('run_id', '=', runId)
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** Deletes finished runs (with their steps and logs) older than `before`, keeping each workflow's latest run. */
export async function purgeWorkflowHistory(
  store: Store,
  before: number,
  batchSize: number,
): Promise<{ runs: number; batches: number }> {
  const db = store.db;
  let runs = 0;
  let batches = 0;
  for (;;) {
    const keep = db
      .selectFrom('workflow_runs')
      .select((eb) => eb.fn.max('id').as('id'))
      .groupBy('workflow');
    const ids = await db
      .selectFrom('workflow_runs')
      .select('id')
      .where('status', '!=', 'running')
      .where('finished_at', '<', before)
      .where('id', 'not in', keep)
      .orderBy('id')
      .limit(Math.max(1, Math.floor(batchSize / 50)))
      .execute();
    if (ids.length === 0) break;
    const list = ids.map((r) => r.id);
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('workflow_step_logs').where('run_id', 'in', list).execute();
      await trx.deleteFrom('workflow_steps').where('run_id', 'in', list).execute();
      await trx.deleteFrom('workflow_runs').where('id', 'in', list).execute();
    });
    runs += list.length;
    batches += 1;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { runs, batches };
}
