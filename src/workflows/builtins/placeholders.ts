import { skipped, type WorkflowDefinition } from '../types.ts';

// Slots registered now so schedules, pause state and health exist from day one; the tracking and
// rule-pack features replace these definitions. Their steps report "skipped", never a success.

export const trackingWorkflow: WorkflowDefinition = {
  name: 'tracking',
  description: 'consolidates raw tracking logs into indicators (not configured yet)',
  schedule: '*/10 * * * *',
  steps: [{ name: 'consolidate-tracking-logs', run: async () => skipped('not configured: tracking is not available in this version') }],
};

export const deliverabilityUpdateWorkflow: WorkflowDefinition = {
  name: 'deliverability-update',
  description: 'loads MX-rule and bounce-rule packs, validates, versions and applies them (not configured yet)',
  schedule: '30 3 * * *',
  steps: [{ name: 'update-rule-packs', run: async () => skipped('not configured: rule pack updates are not available in this version') }],
};
