import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { HeraldConfig, ShapingConfig } from '../config/schema.ts';
import type { MtaShaping } from '../mta/dispatch.ts';
import type { Store } from '../store/database.ts';
import { createShapingRuntime, type ShapingRuntime } from './runtime.ts';

// Shaping as the MTA consumes it (MtaOptions.shaping): the Shaper is the pool's throttle and
// connection policy, the affinity table its source chooser. One runtime per MTA process.

export interface MtaShapingOptions {
  config: ShapingConfig;
  /** What a rule without timeouts/tls gets. */
  mta: HeraldConfig['mta'];
  clock: Clock;
  logger: Logger;
  nodeId: string;
  store?: Store;
}

export interface MtaShapingParts {
  runtime: ShapingRuntime;
  mta: MtaShaping;
}

/** Throws AppError RULES_INVALID (file:line) when the packs do not validate. */
export async function createMtaShaping(options: MtaShapingOptions): Promise<MtaShapingParts> {
  const { mta } = options;
  const runtime = await createShapingRuntime({
    config: options.config,
    defaults: {
      connectTimeoutMs: mta.connectTimeoutMs,
      commandTimeoutMs: mta.commandTimeoutMs,
      dataTimeoutMs: mta.dataTimeoutMs,
      opportunisticTls: mta.opportunisticTls,
    },
    clock: options.clock,
    logger: options.logger,
    nodeId: options.nodeId,
    store: options.store,
  });
  const { shaper, affinities } = runtime;
  return {
    runtime,
    mta: {
      throttle: shaper,
      policy: { limitsFor: (mxHost, publicId) => shaper.limitsFor(mxHost, publicId) },
      sources: affinities,
      checkDomain: (domain) => shaper.checkDomain(domain),
      reportDnsStale: (source) => runtime.reportDnsStale(source),
      // A live session renews its lease well before it could expire.
      renewAfterMs: options.config.connectionLeaseMs / 3,
    },
  };
}
