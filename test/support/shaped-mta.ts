import type { ClassifyReply } from '../../src/bounce/types.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { configSchema } from '../../src/config/schema.ts';
import { createMta, type MtaConfig } from '../../src/mta/queue-runner.ts';
import { createMtaStore } from '../../src/mta/queue-store.ts';
import { createMtaShaping } from '../../src/shaping/mta-shaping.ts';
import type { DialectContext } from './databases.ts';

/** One MTA with MX rules on the test's database, as `herald start` composes it (no DKIM, no tracking). */
export async function createShapedMta(
  context: DialectContext,
  options: {
    mta: MtaConfig;
    shaping: Record<string, unknown>;
    nodeId: string;
    classify?: ClassifyReply | undefined;
    /** The port MX hosts found in DNS are reached on (MtaOptions.mxPort). */
    mxPort?: number;
  },
) {
  const parts = await createMtaShaping({
    config: configSchema.parse({ shaping: options.shaping }).shaping,
    mta: options.mta,
    clock: { now: () => Date.now() },
    logger: silentLogger,
    nodeId: options.nodeId,
    store: context.store(),
  });
  const mta = createMta({
    store: createMtaStore(context.store()),
    nodeId: options.nodeId,
    config: options.mta,
    logger: silentLogger,
    shaping: parts.mta,
    ...(options.classify && { classify: options.classify }),
    ...(options.mxPort !== undefined && { mxPort: options.mxPort }),
  });
  return { mta, shaping: parts.runtime };
}
