import { done, skipped, type StepDefinition, type WorkflowDefinition } from '../workflows/types.ts';
import { stalledPushes } from './outbound-store.ts';
import { pushDelivery } from './push.ts';
import { describeForward, forwardPendingStates } from './state-forward.ts';
import { peerClients, retryPolicyOf, syncAll, type SyncKind } from './sync.ts';

// Technical workflows of the marketing side: pull counters often (cheap, one request per
// delivery) and delivery logs less often (incremental pages by the execution side's cursor).

function syncStep(kind: SyncKind): StepDefinition {
  return {
    name: `pull-${kind}`,
    async run(ctx) {
      const config = ctx.config.midsourcing;
      if (config.mode !== 'marketing') return skipped(`midsourcing.mode is ${config.mode}`);
      const result = await syncAll(ctx.store, config, kind, ctx.clock, ctx.keepAlive, ctx.logger);
      for (const failure of result.failed) await ctx.log(`delivery ${failure.deliveryId}: ${failure.error}`, 'warn');
      if (result.failed.length > 0 && result.synced === 0)
        return {
          kind: 'failed',
          error: `${kind} pull failed for ${result.failed.length} deliveries: ${result.failed[0]!.error}`,
        };
      await ctx.log(`${kind}: ${result.synced} deliveries pulled, ${result.failed.length} failed`);
      return done(`${result.synced} pulled, ${result.failed.length} failed`);
    },
  };
}

// A push left unfinished (process killed, peer down past maxAttempts) resumes from its part rows.
// Only pushes idle for this long: a live `herald mid push` updates its row at every attempt. Even
// if both ran at once, parts and finalize are idempotent on the execution side.
const stalledAfterMs = 5 * 60_000;

const resumePushes: StepDefinition = {
  name: 'resume-pushes',
  async run(ctx) {
    const config = ctx.config.midsourcing;
    if (config.mode !== 'marketing') return skipped(`midsourcing.mode is ${config.mode}`);
    const stalled = await stalledPushes(ctx.store, ctx.clock.now() - stalledAfterMs);
    const clients = peerClients(config, ctx.clock, ctx.logger);
    let resumed = 0;
    try {
      for (const outbound of stalled) {
        try {
          const result = await pushDelivery({
            store: ctx.store,
            client: clients.get(outbound.peer),
            deliveryId: outbound.delivery_id,
            partSize: config.partSize,
            inFlight: config.partsInFlight,
            retry: retryPolicyOf(config),
            clock: ctx.clock,
            logger: ctx.logger,
            ...(ctx.metrics && {
              onPartAttempt: (seconds, outcome) => ctx.metrics?.observePartAppend('marketing', seconds, outcome),
            }),
          });
          resumed++;
          await ctx.log(
            `resumed push of delivery ${result.deliveryId} to ${result.peer}: finalized as ${result.remoteId}`,
          );
        } catch (error) {
          await ctx.log(
            `delivery ${outbound.delivery_id}: push still failing: ${error instanceof Error ? error.message : String(error)}`,
            'warn',
          );
        }
        await ctx.keepAlive();
      }
    } finally {
      clients.close();
    }
    return done(`${resumed}/${stalled.length} stalled pushes resumed`);
  },
};

// An operator's pause, resume or stop that `herald delivery` could not forward at once (peer down,
// or a state changed some other way) is sent here, before anything else.
const forwardStates: StepDefinition = {
  name: 'forward-states',
  async run(ctx) {
    const config = ctx.config.midsourcing;
    if (config.mode !== 'marketing') return skipped(`midsourcing.mode is ${config.mode}`);
    const results = await forwardPendingStates(ctx.store, config, ctx.clock, ctx.logger);
    const count = (kind: string) => results.filter((result) => result.kind === kind).length;
    for (const result of results) await ctx.log(describeForward(result), result.kind === 'failed' ? 'warn' : 'info');
    return done(`${count('forwarded')} forwarded, ${count('queued')} queued, ${count('failed')} failed`);
  },
};

export const midSyncCountersWorkflow: WorkflowDefinition = {
  name: 'mid-sync-counters',
  description:
    'forwards paused/resumed/stopped states, resumes stalled pushes and pulls the counters of deliveries pushed to execution instances',
  schedule: '*/10 * * * *',
  steps: [forwardStates, resumePushes, syncStep('counters')],
};

export const midSyncLogsWorkflow: WorkflowDefinition = {
  name: 'mid-sync-logs',
  description: 'pulls delivery log outcomes of deliveries pushed to execution instances, by server cursor',
  schedule: '15 * * * *',
  steps: [syncStep('logs')],
};
