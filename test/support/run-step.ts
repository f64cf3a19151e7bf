import type { Clock } from '../../src/common/clock.ts';
import { silentLogger } from '../../src/common/logger.ts';
import type { HeraldConfig } from '../../src/config/schema.ts';
import type { Store } from '../../src/store/database.ts';
import type { StepDefinition } from '../../src/workflows/types.ts';

/** Runs one workflow step outside the engine; its summary when done, else its outcome's kind. */
export async function runStep(step: StepDefinition, store: Store, config: HeraldConfig, clock: Clock): Promise<string> {
  const outcome = await step.run({
    store,
    config,
    clock,
    logger: silentLogger,
    nodeId: 'n',
    runId: 1,
    log: async () => {},
    keepAlive: async () => {},
  });
  return outcome.kind === 'done' ? (outcome.summary ?? 'done') : outcome.kind;
}
