import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Store } from '../src/store/database.ts';
import { createWorkflowEngine, type WorkflowEngineOptions } from '../src/workflows/engine.ts';
import { createWorkflowRegistry } from '../src/workflows/registry.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { getWorkflowRow, listRuns, listSteps } from '../src/workflows/workflow-store.ts';
import { done, type WorkflowDefinition } from '../src/workflows/types.ts';
import { describeEachDialect } from './support/databases.ts';

// Faults an operator meets with the workflow engine: a step that never ends when the node is asked
// to stop.

const at = (iso: string) => Date.parse(iso);

describeEachDialect('workflow engine faults', (context) => {
  const engineFor = (
    store: Store,
    definitions: WorkflowDefinition[],
    clock: ReturnType<typeof manualClock>,
    extra: Partial<WorkflowEngineOptions> = {},
  ) =>
    createWorkflowEngine({
      store,
      config: parseConfig({ workflows: {} }, 'test'),
      clock,
      logger: silentLogger,
      nodeId: 'node-a',
      registry: createWorkflowRegistry(definitions),
      ticker: manualTicker,
      ...extra,
    });

  it('stop() gives up on a step that never ends: its run is failed at that step, its lease freed', async () => {
    const store = context.store();
    let entered!: () => void;
    const inStep = new Promise<void>((resolve) => (entered = resolve));
    let hang = true;
    const definition: WorkflowDefinition = {
      name: 'hangs',
      description: 't',
      schedule: '0 4 * * *',
      steps: [
        { name: 'fine', run: async () => done() },
        {
          name: 'stuck',
          async run() {
            entered();
            // A socket that never answers, a promise nobody settles.
            if (hang) await new Promise(() => {});
            return done();
          },
        },
      ],
    };
    const clock = manualClock(at('2026-04-01T10:00:00Z'));
    const engine = engineFor(store, [definition], clock, { stopTimeoutMs: 50 });
    void engine.runNow('hangs');
    await inStep;
    await engine.stop();

    const [run] = await listRuns(store, 'hangs', 1);
    expect(run).toMatchObject({ status: 'failed', failed_step: 1 });
    expect(run!.error).toMatch(/^interrupted: the engine stopped and this step had not ended 50 ms later$/);
    expect((await listSteps(store, run!.id)).map((s) => s.status)).toEqual(['succeeded', 'failed']);
    expect((await getWorkflowRow(store, 'hangs'))?.lease_holder).toBeNull();

    hang = false;
    const next = engineFor(store, [definition], clock);
    expect(await next.restart('hangs')).toMatchObject({ status: 'succeeded' });
    expect((await listRuns(store, 'hangs', 1))[0]).toMatchObject({ start_step: 1, restart_of: run!.id });
  });
});
