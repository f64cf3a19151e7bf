import type { Store } from '../../src/store/database.ts';

/**
 * A run still `running` and its workflow row leased to its holder until `leaseExpiresAt`: a live
 * run, or, with the lease in the past, what a process killed with SIGKILL leaves behind. Returns
 * the run id.
 */
export async function insertRunningRun(
  store: Store,
  run: { workflow: string; holder: string; now: number; startedAt: number; leaseExpiresAt: number },
): Promise<number> {
  await store.db
    .insertInto('workflows')
    .values({
      name: run.workflow,
      paused_at: null,
      last_due_at: run.now,
      lease_holder: run.holder,
      lease_expires_at: run.leaseExpiresAt,
      created_at: run.now - 3_600_000,
      updated_at: run.startedAt,
    })
    .execute();
  const row = await store.db
    .insertInto('workflow_runs')
    .values({
      workflow: run.workflow,
      status: 'running',
      trigger: 'manual',
      holder: run.holder,
      scheduled_for: null,
      missed_slots: 0,
      start_step: 0,
      restart_of: null,
      failed_step: null,
      error: null,
      started_at: run.startedAt,
      finished_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}
