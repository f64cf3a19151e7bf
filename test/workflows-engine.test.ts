import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { listRuns, listStepLogs, listSteps } from '../src/workflows/workflow-store.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { createWorkflowRegistry } from '../src/workflows/registry.ts';
import { intervalTicker, manualTicker } from '../src/workflows/ticker.ts';
import { done, type StepDefinition, type WorkflowDefinition } from '../src/workflows/types.ts';
import { describeEachDialect } from './support/databases.ts';
import { insertRunningRun } from './support/running-workflow-run.ts';

const at = (iso: string) => Date.parse(iso);

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function counted(name: string, counts: Map<string, number>, body?: () => Promise<void>): StepDefinition {
  return {
    name,
    async run() {
      counts.set(name, (counts.get(name) ?? 0) + 1);
      await body?.();
      return done();
    },
  };
}

describeEachDialect('workflow engine', (context) => {
  const config = (workflows: Record<string, unknown> = {}) => parseConfig({ workflows }, 'test');
  const engineFor = (
    store: Store,
    registry: WorkflowDefinition[],
    clock: ReturnType<typeof manualClock>,
    nodeId = 'node-a',
    workflows = {},
  ) =>
    createWorkflowEngine({
      store,
      config: config(workflows),
      clock,
      logger: silentLogger,
      nodeId,
      registry: createWorkflowRegistry(registry),
      ticker: manualTicker,
    });

  it('runs on time, once per slot, and catches up once after downtime', async () => {
    const store = context.store();
    const counts = new Map<string, number>();
    const hourly: WorkflowDefinition = {
      name: 'hourly',
      description: 't',
      schedule: '0 * * * *',
      steps: [counted('only', counts)],
    };
    const clock = manualClock(at('2026-03-01T00:30:00Z'));
    const engine = engineFor(store, [hourly], clock);
    await engine.start();
    expect(await engine.tick()).toEqual([]);
    clock.set(at('2026-03-01T00:59:59Z'));
    expect(await engine.tick()).toEqual([]);
    clock.set(at('2026-03-01T01:00:00Z'));
    expect(await engine.tick()).toEqual(['hourly']);
    await engine.whenIdle();
    clock.set(at('2026-03-01T01:00:15Z'));
    expect(await engine.tick()).toEqual([]);
    await engine.stop();

    // Five hours of downtime, then a new process: one run for all five slots.
    clock.set(at('2026-03-01T06:10:00Z'));
    const restarted = engineFor(store, [hourly], clock);
    await restarted.start();
    expect(await restarted.tick()).toEqual(['hourly']);
    await restarted.whenIdle();
    expect(await restarted.tick()).toEqual([]);
    await restarted.stop();

    expect(counts.get('only')).toBe(2);
    const runs = await listRuns(store, 'hourly', 10);
    expect(runs.map((r) => [r.status, r.scheduled_for, r.missed_slots])).toEqual([
      ['succeeded', at('2026-03-01T06:00:00Z'), 5],
      ['succeeded', at('2026-03-01T01:00:00Z'), 1],
    ]);
  });

  it('never overlaps a run with itself, and catches up the slot it covered once it ends', async () => {
    const store = context.store();
    const counts = new Map<string, number>();
    const gate = deferred();
    const slow: WorkflowDefinition = {
      name: 'slow',
      description: 't',
      schedule: '*/10 * * * *',
      steps: [counted('wait', counts, () => gate.promise)],
    };
    const clock = manualClock(at('2026-03-02T00:05:00Z'));
    const engine = engineFor(store, [slow], clock);
    const other = engineFor(store, [slow], clock, 'node-b');
    await engine.start();
    await other.start();
    clock.set(at('2026-03-02T00:10:00Z'));
    expect(await engine.tick()).toEqual(['slow']);
    clock.set(at('2026-03-02T00:20:00Z'));
    expect(await engine.tick()).toEqual([]);
    expect(await other.tick()).toEqual([]);
    expect(await other.runNow('slow').catch((e: Error) => e.message)).toMatch(
      /already running \(lease held by node-a\//,
    );
    gate.resolve();
    await engine.whenIdle();
    expect(counts.get('wait')).toBe(1);
    expect(await other.tick()).toEqual(['slow']);
    await other.whenIdle();
    expect(counts.get('wait')).toBe(2);
    await engine.stop();
    await other.stop();
  });

  it('lets two engines on one database run a workflow exactly once per slot, never at the same time', async () => {
    const storeA = openStore(context.url());
    const storeB = openStore(context.url());
    let inside = 0;
    let maxInside = 0;
    let runs = 0;
    let gate = deferred();
    const step: StepDefinition = {
      name: 'critical',
      async run() {
        inside += 1;
        runs += 1;
        maxInside = Math.max(maxInside, inside);
        await gate.promise;
        inside -= 1;
        return done();
      },
    };
    const shared: WorkflowDefinition = { name: 'shared', description: 't', schedule: '* * * * *', steps: [step] };
    const clock = manualClock(at('2026-03-03T00:00:30Z'));
    const a = engineFor(storeA, [shared], clock, 'node-a');
    const b = engineFor(storeB, [shared], clock, 'node-b');
    await Promise.all([a.start(), b.start()]);
    const startedPerPass: number[][] = [];
    for (let round = 0; round < 6; round += 1) {
      gate = deferred();
      clock.advance(60_000);
      const [fromA, fromB] = await Promise.all([a.tick(), b.tick()]);
      // The next slot comes while the run is still going: only the lease keeps the other node out.
      clock.advance(60_000);
      const [againA, againB] = await Promise.all([a.tick(), b.tick()]);
      startedPerPass.push([fromA.length + fromB.length, againA.length + againB.length]);
      gate.resolve();
      await Promise.all([a.whenIdle(), b.whenIdle()]);
    }
    await Promise.all([a.stop(), b.stop()]);
    await storeA.close();
    await storeB.close();
    expect(maxInside).toBe(1);
    expect(startedPerPass).toEqual(Array.from({ length: 6 }, () => [1, 0]));
    expect(runs).toBe(6);
  });

  it('marks the run of a dead node failed at the next start, and restarts it from the failed step', async () => {
    const store = context.store();
    const counts = new Map<string, number>();
    const steps = [counted('first', counts), counted('second', counts), counted('third', counts)];
    const definition: WorkflowDefinition = { name: 'three-steps', description: 't', schedule: '0 4 * * *', steps };
    const clock = manualClock(at('2026-03-04T12:00:00Z'));
    const db = store.db;
    const now = clock.now();
    // What a process killed during step 1 leaves behind: its run "running", its lease expired.
    await db
      .insertInto('workflows')
      .values({
        name: 'three-steps',
        paused_at: null,
        last_due_at: now,
        lease_holder: 'dead-node/abc',
        lease_expires_at: now - 1,
        created_at: now - 86_400_000,
        updated_at: now,
      })
      .execute();
    const run = await db
      .insertInto('workflow_runs')
      .values({
        workflow: 'three-steps',
        status: 'running',
        trigger: 'schedule',
        holder: 'dead-node/abc',
        scheduled_for: now - 60_000,
        missed_slots: 1,
        start_step: 0,
        restart_of: null,
        failed_step: null,
        error: null,
        started_at: now - 60_000,
        finished_at: null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('workflow_steps')
      .values([
        {
          run_id: run.id,
          step_index: 0,
          name: 'first',
          status: 'succeeded',
          summary: null,
          error: null,
          started_at: now - 60_000,
          finished_at: now - 50_000,
        },
        {
          run_id: run.id,
          step_index: 1,
          name: 'second',
          status: 'running',
          summary: null,
          error: null,
          started_at: now - 50_000,
          finished_at: null,
        },
      ])
      .execute();

    const engine = engineFor(store, [definition], clock, 'node-a');
    await engine.start();
    const [interrupted] = await listRuns(store, 'three-steps', 1);
    expect(interrupted).toMatchObject({ id: run.id, status: 'failed', failed_step: 1 });
    expect(interrupted!.error).toMatch(/^interrupted: dead-node\/abc/);
    expect((await listSteps(store, run.id)).map((s) => s.status)).toEqual(['succeeded', 'failed']);
    expect((await engine.status())[0]).toMatchObject({ state: 'failed', health: 'failed' });

    const result = await engine.restart('three-steps');
    expect(result.status).toBe('succeeded');
    expect(Object.fromEntries(counts)).toEqual({ second: 1, third: 1 });
    const [restarted] = await listRuns(store, 'three-steps', 1);
    expect(restarted).toMatchObject({ trigger: 'restart', start_step: 1, restart_of: run.id, status: 'succeeded' });
    expect((await listSteps(store, restarted!.id)).map((s) => [s.step_index, s.status])).toEqual([
      [1, 'succeeded'],
      [2, 'succeeded'],
    ]);
    expect((await engine.status())[0]).toMatchObject({ state: 'idle', health: 'ok' });
    await expect(engine.restart('three-steps')).rejects.toThrow(
      /no failed last run to restart \(last run: succeeded\): `herald workflows run three-steps` runs it again/,
    );
    await engine.stop();
  });

  it('a manual run (herald workflows run, no engine started) first marks the run of a dead node failed', async () => {
    const store = context.store();
    const counts = new Map<string, number>();
    const definition: WorkflowDefinition = {
      name: 'manual-after-kill',
      description: 't',
      schedule: '0 4 * * *',
      steps: [counted('only', counts)],
    };
    const clock = manualClock(at('2026-03-04T13:00:00Z'));
    const now = clock.now();
    // What `herald workflows run` killed with SIGKILL leaves behind: its run "running", its lease expired.
    const deadId = await insertRunningRun(store, {
      workflow: 'manual-after-kill',
      holder: 'killed-cli/abc',
      now,
      startedAt: now - 60_000,
      leaseExpiresAt: now - 1,
    });

    const engine = engineFor(store, [definition], clock, 'node-cli');
    expect((await engine.runNow('manual-after-kill')).status).toBe('succeeded');
    const runs = await listRuns(store, 'manual-after-kill', 10);
    expect(runs.map((r) => [r.id === deadId, r.status])).toEqual([
      [false, 'succeeded'],
      [true, 'failed'],
    ]);
    expect(runs[1]!.error).toMatch(/^interrupted: killed-cli\/abc stopped renewing its lease/);
  });

  it('leaves a run alone while its holder keeps its lease', async () => {
    const store = context.store();
    const clock = manualClock(at('2026-03-05T12:00:00Z'));
    const now = clock.now();
    await insertRunningRun(store, {
      workflow: 'alive',
      holder: 'live-node/x',
      now,
      startedAt: now,
      leaseExpiresAt: now + 60_000,
    });
    const engine = engineFor(
      store,
      [{ name: 'alive', description: 't', schedule: '0 4 * * *', steps: [counted('s', new Map())] }],
      clock,
    );
    await engine.start();
    expect((await listRuns(store, 'alive', 1))[0]!.status).toBe('running');
    clock.advance(60_001);
    expect(await engine.recoverInterrupted()).toBe(1);
    await engine.stop();
  });

  it('pauses and resumes: paused slots are skipped, not caught up', async () => {
    const store = context.store();
    const counts = new Map<string, number>();
    const clock = manualClock(at('2026-03-06T00:30:00Z'));
    const engine = engineFor(
      store,
      [{ name: 'pausable', description: 't', schedule: '0 * * * *', steps: [counted('s', counts)] }],
      clock,
    );
    await engine.start();
    expect(await engine.pause('pausable')).toEqual({ changed: true });
    expect(await engine.pause('pausable')).toEqual({ changed: false });
    clock.set(at('2026-03-06T03:00:00Z'));
    expect(await engine.tick()).toEqual([]);
    expect((await engine.status())[0]).toMatchObject({ state: 'paused', health: 'ok', nextRunAt: null });
    clock.set(at('2026-03-14T03:00:00Z'));
    expect((await engine.status())[0]!.health).toBe('paused_too_long');
    expect(await engine.resume('pausable')).toEqual({ changed: true });
    expect(await engine.tick()).toEqual([]);
    expect((await engine.status())[0]!.nextRunAt).toBe('2026-03-14T04:00:00.000Z');
    clock.set(at('2026-03-14T04:00:00Z'));
    expect(await engine.tick()).toEqual(['pausable']);
    await engine.whenIdle();
    expect(counts.get('s')).toBe(1);
    await engine.stop();
  });

  it('stops a run at the next step boundary on stop(), marked failed and restartable there', async () => {
    const store = context.store();
    const counts = new Map<string, number>();
    const gate = deferred();
    const entered = deferred();
    const definition: WorkflowDefinition = {
      name: 'stoppable',
      description: 't',
      schedule: '0 4 * * *',
      steps: [
        counted('first', counts, async () => {
          entered.resolve();
          await gate.promise;
        }),
        counted('second', counts),
      ],
    };
    const clock = manualClock(at('2026-03-08T10:00:00Z'));
    const engine = engineFor(store, [definition], clock);
    const running = engine.runNow('stoppable');
    await entered.promise;
    const stopped = engine.stop();
    gate.resolve();
    await stopped;
    expect(await running).toMatchObject({
      status: 'failed',
      failedStep: 1,
      error: 'step 1 (second): interrupted: the engine stopped before this step',
    });
    expect(counts.get('second')).toBeUndefined();
    const again = engineFor(store, [definition], clock);
    expect((await again.restart('stoppable')).status).toBe('succeeded');
    expect(counts.get('second')).toBe(1);
  });

  it('ticks on a timer until stopped', async () => {
    const store = context.store();
    let ticks = 0;
    const twoTicks = deferred();
    const engine = createWorkflowEngine({
      store,
      config: config(),
      clock: manualClock(),
      logger: silentLogger,
      nodeId: 'node-t',
      registry: createWorkflowRegistry([
        { name: 'timed', description: 't', schedule: '0 4 * * *', steps: [counted('s', new Map())] },
      ]),
      ticker: (tick) =>
        intervalTicker(
          1,
          silentLogger,
        )(async () => {
          await tick();
          if ((ticks += 1) === 2) twoTicks.resolve();
        }),
    });
    await engine.start();
    await twoTicks.promise;
    await engine.stop();
    expect(ticks).toBeGreaterThanOrEqual(2);
  });

  it('caps a run log that logs per item: first and last lines kept, the dropped count said between', async () => {
    const store = context.store();
    // A step logging per item, then failing: the end of the log is what explains the failure.
    const chatty: WorkflowDefinition = {
      name: 'chatty',
      description: 't',
      schedule: '0 4 * * *',
      steps: [
        {
          name: 'per-item',
          async run(ctx) {
            for (let item = 1; item <= 600; item += 1) await ctx.log(`item ${item}`);
            await ctx.log('x'.repeat(50_000), 'error');
            return { kind: 'failed', error: 'gave up' };
          },
        },
      ],
    };
    const engine = engineFor(store, [chatty], manualClock(at('2026-03-06T00:00:00Z')), 'node-a', {
      logLinesPerRun: 200,
    });
    const result = await engine.runNow('chatty');
    const rows = await listStepLogs(store, result.runId);
    expect(rows.length).toBeLessThanOrEqual(200 + 100 + 1);
    const messages = rows.map((row) => row.message);
    expect(messages.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => `item ${i + 1}`));
    const marker = messages[100]!;
    const kept = rows.length - 1;
    expect(marker).toBe(
      `… ${601 - kept} line(s) dropped: a run keeps its first 100 and last 100 log lines (workflows.logLinesPerRun)`,
    );
    expect(messages.at(-2)).toBe('item 600');
    expect(messages.at(-1)).toMatch(/^x{4000} … \(46000 more characters cut\)$/);
    expect(rows.every((row, index) => index === 0 || row.id > rows[index - 1]!.id)).toBe(true);
  });

  describe('failure notification', () => {
    const received: Array<{ headers: IncomingMessage['headers']; body: unknown }> = [];
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        received.push({ headers: request.headers, body: JSON.parse(body) });
        response.writeHead(204).end();
      });
    });
    let url = '';
    beforeAll(async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/herald`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    it('records the failed step, stops the run there, and POSTs the failure to the webhook', async () => {
      const store = context.store();
      const counts = new Map<string, number>();
      const failing: WorkflowDefinition = {
        name: 'breaks',
        description: 't',
        schedule: '0 4 * * *',
        steps: [
          counted('fine', counts),
          { name: 'broken', run: async () => ({ kind: 'failed', error: 'disk full' }) },
          counted('never', counts),
        ],
      };
      const clock = manualClock(at('2026-03-07T10:00:00Z'));
      const engine = engineFor(store, [failing], clock, 'node-a', { webhookUrl: url });
      const result = await engine.runNow('breaks');
      expect(result).toMatchObject({
        status: 'failed',
        failedStep: 1,
        failedStepName: 'broken',
        error: 'step 1 (broken): disk full',
      });
      expect(counts.get('never')).toBeUndefined();
      expect(received).toHaveLength(1);
      expect(received[0]!.headers['content-type']).toBe('application/json');
      expect(received[0]!.body).toMatchObject({
        event: 'workflow.failed',
        workflow: 'breaks',
        runId: result.runId,
        step: 1,
        stepName: 'broken',
        error: 'step 1 (broken): disk full',
        nodeId: 'node-a',
      });
      expect((await engine.status())[0]).toMatchObject({
        state: 'failed',
        health: 'failed',
        lastError: 'step 1 (broken): disk full',
      });
    });

    it('survives an unreachable webhook and a thrown step', async () => {
      const store = context.store();
      const clock = manualClock(at('2026-03-07T11:00:00Z'));
      const throwing: WorkflowDefinition = {
        name: 'throws',
        description: 't',
        schedule: '0 4 * * *',
        steps: [
          {
            name: 'boom',
            run: async () => {
              throw new Error('unexpected');
            },
          },
        ],
      };
      const engine = engineFor(store, [throwing], clock, 'node-a', { webhookUrl: 'http://127.0.0.1:9/unreachable' });
      const result = await engine.runNow('throws');
      expect(result).toMatchObject({ status: 'failed', error: 'step 0 (boom): unexpected' });
      expect((await engine.runNow('throws')).status).toBe('failed');
    });
  });
});
