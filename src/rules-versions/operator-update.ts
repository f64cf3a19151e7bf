import { randomId } from '../common/ids.ts';
import type { Herald } from '../main.ts';
import { deliverabilityUpdateWorkflow } from '../workflows/builtins/deliverability-update.ts';
import { withWorkflowLease } from '../workflows/workflow-lease.ts';
import type { FetchOptions } from './http-source.ts';
import { updateRulePacks, type UpdateResult } from './update.ts';

/**
 * `herald rules update` and the API: the deliverability-update workflow's step, run now in this
 * process while holding the workflow's lease (refused while a run holds it; no run starts meanwhile).
 */
export async function updateRulePacksNow(
  herald: Herald,
  source?: string,
  destinations?: FetchOptions['destinations'],
): Promise<UpdateResult> {
  const lease = {
    store: herald.store,
    workflow: deliverabilityUpdateWorkflow.name,
    holder: `${herald.nodeId}/rules-update-${randomId(6)}`,
    clock: herald.clock,
    leaseMs: herald.config.workflows.leaseSeconds * 1000,
  };
  return withWorkflowLease(lease, () =>
    updateRulePacks(
      { store: herald.store, config: herald.config, now: herald.clock.now() },
      source ?? herald.config.deliverability.source,
      destinations,
    ),
  );
}
