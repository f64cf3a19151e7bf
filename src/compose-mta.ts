import type { HeraldConfig, ShapingConfig } from './config/schema.ts';
import type { Herald } from './main.ts';
import { createMta, type Mta } from './mta/queue-runner.ts';
import type { MassRejectionTrip } from './quarantine/mass-rejection.ts';
import { createQuarantineRuntime } from './quarantine/runtime.ts';
import { createMtaShaping } from './shaping/mta-shaping.ts';
import type { ShapingRuntime } from './shaping/runtime.ts';
import { createMtaStore } from './mta/queue-store.ts';
import { createMessageDecorator } from './tracking/decorator.ts';
import { loadKeyRing, trackingBaseUrl } from './tracking/keys.ts';
import { loadVerpSigner } from './bounce/verp-keys.ts';

// The one place where the MTA is assembled with what surrounds it: reply qualification and quarantine
// (src/bounce, src/quarantine), link tracking and List-Unsubscribe (src/tracking). `herald start` and
// `herald demo` both use it, so the demo sends exactly as production does.

export interface ComposedMta {
  mta: Mta;
  /** MX rules, throttles, affinities, breaker and backoff of this MTA (`herald mx stats` reads its snapshots). */
  shaping: ShapingRuntime;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ComposeMtaOptions {
  /** Default: the configuration's `mta` section. */
  mtaConfig?: HeraldConfig['mta'];
  /** Default: the node id; the demo uses its own so it never takes a running node's claims. */
  nodeId?: string;
  /** Default: the configuration's `shaping` section (the demo uses the simulator's rule pack). */
  shapingConfig?: ShapingConfig;
}

export async function composeMta(herald: Herald, options: ComposeMtaOptions = {}): Promise<ComposedMta> {
  // A domain the quarantine judges to be rejecting a whole batch is suspended like the breaker does.
  let suspend: ((trip: MassRejectionTrip) => void) | undefined;
  const quarantine = await createQuarantineRuntime(herald, { onMassRejection: (trip) => suspend?.(trip) });
  const keyRing = await loadKeyRing(herald.store, herald.config.tracking, herald.clock.now());
  const decorator = createMessageDecorator({
    keyRing,
    baseUrl: trackingBaseUrl(herald.config.tracking),
    unsubscribeMailDomain: herald.config.tracking.unsubscribeMailDomain || null,
  });
  const verp = await loadVerpSigner(herald.store, herald.config, herald.clock.now());
  const mtaConfig = options.mtaConfig ?? herald.config.mta;
  const nodeId = options.nodeId ?? herald.nodeId;
  // MX rules are checked here: a pack that does not validate stops the start (RULES_INVALID, file:line).
  const shaping = await createMtaShaping({
    config: options.shapingConfig ?? herald.config.shaping,
    mta: mtaConfig,
    clock: herald.clock,
    logger: herald.logger,
    nodeId,
    store: herald.store,
  });
  suspend = (trip) =>
    shaping.runtime.shaper.breaker.suspend({
      domain: trip.domain,
      since: trip.since,
      until: trip.until,
      evidence: {
        messages: trip.messages,
        errors: trip.hard,
        errorRatio: Math.round((trip.hard / trip.messages) * 1000) / 1000,
        sampleReplies: [`mass rejection (quarantine.massRejection): ${trip.sampleReply}`],
      },
    });
  const mta = createMta({
    store: createMtaStore(herald.store),
    nodeId,
    // No nodeId configured: the host name is only a default, and a second process on the host takes its own.
    ...(options.nodeId === undefined &&
      herald.config.nodeId === undefined && { nodeIdFallback: `${nodeId}-${process.pid}` }),
    config: mtaConfig,
    clock: herald.clock,
    logger: herald.logger,
    classify: quarantine.classify,
    outcomeEffects: quarantine.mta.applyWithin,
    onFinished: quarantine.mta.onFinished,
    onOutcomes: (outcomes) => {
      quarantine.mta.onOutcomes(outcomes);
      herald.metrics.observeOutcomes(outcomes);
    },
    decorator,
    envelopeSender: (logId, bounceDomain) => verp.address(logId, bounceDomain),
    shaping: shaping.mta,
    timings: herald.metrics.mtaTimings,
  });
  return {
    mta,
    shaping: shaping.runtime,
    async start() {
      shaping.runtime.start();
      await mta.start();
      quarantine.sweeper.start();
    },
    async stop() {
      await mta.stop();
      await shaping.runtime.stop();
      await quarantine.close();
    },
  };
}
