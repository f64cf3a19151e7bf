import type { HeraldConfig } from './config/schema.ts';
import type { Herald } from './main.ts';
import { createMta, type Mta } from './mta/queue-runner.ts';
import { createQuarantineRuntime } from './quarantine/runtime.ts';
import { createMtaStore } from './store/mta-queries.ts';
import { createMessageDecorator } from './tracking/decorator.ts';
import { loadKeyRing, trackingBaseUrl } from './tracking/keys.ts';

// The one place where the MTA is assembled with what surrounds it: reply qualification and quarantine
// (src/bounce, src/quarantine), link tracking and List-Unsubscribe (src/tracking). `herald start` and
// `herald demo` both use it, so the demo sends exactly as production does.

export interface ComposedMta {
  mta: Mta;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface ComposeMtaOptions {
  /** Default: the configuration's `mta` section. */
  mtaConfig?: HeraldConfig['mta'];
  /** Default: the node id; the demo uses its own so it never takes a running node's claims. */
  nodeId?: string;
}

export async function composeMta(herald: Herald, options: ComposeMtaOptions = {}): Promise<ComposedMta> {
  const quarantine = createQuarantineRuntime(herald);
  const keyRing = await loadKeyRing(herald.store, herald.config.tracking, herald.clock.now());
  const decorator = createMessageDecorator({
    keyRing,
    baseUrl: trackingBaseUrl(herald.config.tracking),
    unsubscribeMailDomain: herald.config.tracking.unsubscribeMailDomain || null,
  });
  const mta = createMta({
    store: createMtaStore(herald.store),
    nodeId: options.nodeId ?? herald.nodeId,
    config: options.mtaConfig ?? herald.config.mta,
    clock: herald.clock,
    logger: herald.logger,
    classify: quarantine.mta.classify,
    onOutcomes: quarantine.mta.onOutcomes,
    decorator,
  });
  return {
    mta,
    async start() {
      await mta.start();
      quarantine.sweeper.start();
    },
    async stop() {
      await mta.stop();
      await quarantine.close();
    },
  };
}
