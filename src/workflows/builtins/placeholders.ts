import { skipped, type WorkflowDefinition } from '../types.ts';

// Slots registered now so schedules, pause state and health exist from day one; the rule-pack
// feature replaces this definition (tracking's is in tracking.ts). Their steps report "skipped", never a success.

export const deliverabilityUpdateWorkflow: WorkflowDefinition = {
  name: 'deliverability-update',
  description: 'loads MX-rule and bounce-rule packs, validates, versions and applies them (not configured yet)',
  schedule: '30 3 * * *',
  steps: [{ name: 'update-rule-packs', run: async () => skipped('not configured: rule pack updates are not available in this version') }],
};
