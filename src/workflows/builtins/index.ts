import { midSyncCountersWorkflow, midSyncLogsWorkflow } from '../../midsourcing/workflows.ts';
import type { WorkflowDefinition } from '../types.ts';
import { cleanupTasks } from './cleanup-tasks.ts';
import { deliveryManagerWorkflow } from './delivery-manager.ts';
import { deliverabilityUpdateWorkflow } from './deliverability-update.ts';
import { statsWorkflow } from './stats.ts';
import { trackingWorkflow } from './tracking.ts';

export const cleanupWorkflow: WorkflowDefinition = {
  name: 'cleanup',
  description: 'purges old data in bounded batches, finishes expired deliveries, maintains the database',
  schedule: '0 4 * * *',
  steps: cleanupTasks,
};

/** Every built-in technical workflow, in display order. */
export function builtinWorkflows(): WorkflowDefinition[] {
  return [
    cleanupWorkflow,
    deliverabilityUpdateWorkflow,
    deliveryManagerWorkflow,
    statsWorkflow,
    trackingWorkflow,
    midSyncCountersWorkflow,
    midSyncLogsWorkflow,
  ];
}
