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
import { insertRunningRun } from './support/running-workflow-run.ts';
import { waitFor } from './support/wait.ts';

// Faults an operator meets with the workflow engine: a step that never ends when the node is asked
// to stop, a step that throws megabytes, a long step of a `herald workflows run` (no scheduler timer),
// `workflows list` after the only node was killed with kill -9, a clock that jumped a day ahead and back.

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

  it('keeps a step error of megabytes to its first 4,000 characters in the run, its step and the status', async () => {
    const store = context.store();
    const definition: WorkflowDefinition = {
      name: 'huge-error',
      description: 't',
      schedule: '0 4 * * *',
      steps: [
        {
          name: 'dumps',
          run: async () => {
            // A response body or a whole table dump thrown as the message.
            throw new Error(`upstream said: ${'y'.repeat(5_000_000)}`);
          },
        },
      ],
    };
    const engine = engineFor(store, [definition], manualClock(at('2026-04-02T10:00:00Z')));
    const result = await engine.runNow('huge-error');
    const cutError = /^step 0 \(dumps\): upstream said: y{3985} … \(4996015 more characters cut\)$/;
    expect(result.error).toMatch(cutError);
    const [run] = await listRuns(store, 'huge-error', 1);
    expect(run!.error).toMatch(cutError);
    expect((await listSteps(store, run!.id))[0]!.error).toMatch(/^upstream said: y{3985} … \(4996015 more/);
    expect((await engine.status())[0]!.lastError).toMatch(cutError);
  });

  it('a manual run keeps its lease through a step longer than the lease: no other node takes over', async () => {
    const store = context.store();
    let entered!: () => void;
    const inStep = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let inside = 0;
    let most = 0;
    const definition: WorkflowDefinition = {
      name: 'long-step',
      description: 't',
      schedule: '0 4 * * *',
      steps: [
        {
          name: 'one-long-statement',
          async run() {
            inside += 1;
            most = Math.max(most, inside);
            entered();
            // A VACUUM or a peer call: minutes without a batch boundary to call keepAlive() at.
            await released;
            inside -= 1;
            return done();
          },
        },
      ],
    };
    const clock = manualClock(at('2026-04-03T10:00:00Z'));
    const leaseMs = 120_000;
    // `herald workflows run`: an engine never started, so no scheduler tick renews anything.
    const cli = engineFor(store, [definition], clock, { leaseRenewalMs: 10 });
    const running = cli.runNow('long-step');
    await inStep;
    clock.advance(3 * leaseMs);
    await waitFor(
      async () => ((await getWorkflowRow(store, 'long-step'))?.lease_expires_at ?? 0) > clock.now(),
      'the lease renewed while the step runs',
      10_000,
    );
    const other = engineFor(store, [definition], clock, { nodeId: 'node-b' });
    expect(await other.recoverInterrupted()).toBe(0);
    await expect(other.runNow('long-step')).rejects.toThrow(/already running \(lease held by node-a\//);
    release();
    expect(await running).toMatchObject({ status: 'succeeded' });
    expect(most).toBe(1);
  });

  it('list after kill -9 of the only node: its run is shown interrupted (failed), not running and ok', async () => {
    const store = context.store();
    const clock = manualClock(at('2026-04-04T10:00:00Z'));
    const now = clock.now();
    const definition: WorkflowDefinition = {
      name: 'killed',
      description: 't',
      schedule: '*/5 * * * *',
      steps: [{ name: 'only', run: async () => done() }],
    };
    // What `herald workflows run killed`, killed with SIGKILL a while ago, leaves behind.
    const deadId = await insertRunningRun(store, {
      workflow: 'killed',
      holder: 'dead-cli/abc',
      now,
      startedAt: now - 121_000,
      leaseExpiresAt: now - 1,
    });
    // `herald workflows list`: an engine that is never started.
    const [status] = await engineFor(store, [definition], clock).status();
    expect(status).toMatchObject({ state: 'failed', health: 'failed', leaseHolder: null });
    expect(status!.lastError).toBe(
      `interrupted: dead-cli/abc stopped renewing its lease during run ${deadId} (recorded as failed by the next engine tick, \`herald workflows run killed\` or \`restart killed\`)`,
    );
    // A run that holds its lease is running, whatever its age.
    await store.db
      .updateTable('workflows')
      .set({ lease_expires_at: now + 60_000 })
      .where('name', '=', 'killed')
      .execute();
    expect((await engineFor(store, [definition], clock).status())[0]).toMatchObject({
      state: 'running',
      lastError: null,
    });
  });

  it('a clock set a day ahead, then corrected: the schedule runs at its next slot, not a day later', async () => {
    const store = context.store();
    let runs = 0;
    const definition: WorkflowDefinition = {
      name: 'every-hour',
      description: 't',
      schedule: '0 * * * *',
      steps: [
        {
          name: 'count',
          run: async () => {
            runs += 1;
            return done();
          },
        },
      ],
    };
    const clock = manualClock(at('2026-04-05T10:30:00Z'));
    const engine = engineFor(store, [definition], clock);
    await engine.start();
    // NTP misconfigured: the machine believes it is tomorrow, and catches up.
    clock.set(at('2026-04-06T10:30:00Z'));
    expect(await engine.tick()).toEqual(['every-hour']);
    await engine.whenIdle();
    // Corrected back to the real time: the next slot (11:00 today) runs.
    clock.set(at('2026-04-05T10:40:00Z'));
    expect(await engine.tick()).toEqual([]);
    clock.set(at('2026-04-05T11:00:00Z'));
    expect(await engine.tick()).toEqual(['every-hour']);
    await engine.whenIdle();
    expect(runs).toBe(2);
    clock.set(at('2026-04-05T11:30:00Z'));
    expect(await engine.tick()).toEqual([]);
    await engine.stop();
  });
});
