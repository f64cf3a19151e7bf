import type { Clock } from '../common/clock.ts';
import { AppError } from '../common/errors.ts';
import { randomId } from '../common/ids.ts';
import type { Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';
import {
  acquireLease,
  ensureWorkflowRows,
  findOrphanedRuns,
  getWorkflowRow,
  insertRun,
  listRuns,
  markRunInterrupted,
  releaseLease,
  renewLease,
  setPaused,
  type RunTrigger,
} from '../store/workflow-queries.ts';
import { builtinWorkflows } from './builtins/index.ts';
import { notifyFailure, type FetchFunction } from './notify-webhook.ts';
import { createWorkflowRegistry, type WorkflowRegistry } from './registry.ts';
import { executeRun, type RunEnvironment, type RunResult } from './runner.ts';
import { compileSchedule, findDueSlot, type Schedule } from './schedule.ts';
import { describeWorkflows, type WorkflowStatus } from './status.ts';
import { intervalTicker, type Ticker } from './ticker.ts';
import type { WorkflowDefinition } from './types.ts';

// The scheduler: each tick it finds the workflows whose slot is due, takes their lease in the
// database (so one node runs each, whatever the number of nodes), and runs them concurrently.
// After downtime a workflow runs once for all the slots it missed. Runs left "running" by a dead
// process are marked failed (interrupted) and can be restarted from the step that was running.

export interface WorkflowEngineOptions {
  store: Store;
  config: HeraldConfig;
  clock: Clock;
  logger: Logger;
  nodeId: string;
  registry?: WorkflowRegistry;
  /** Default: a timer every workflows.tickSeconds. Tests pass manualTicker and call tick(). */
  ticker?: Ticker;
  /** Seam for the failure webhook; default: global fetch. */
  fetch?: FetchFunction;
}

export interface ScheduledWorkflow {
  definition: WorkflowDefinition;
  schedule: Schedule;
  enabled: boolean;
}

export interface WorkflowEngine {
  /** Registers the workflows, marks interrupted runs failed, and starts the timer. */
  start(): Promise<void>;
  /** Stops the timer; running runs stop at their next step boundary (marked failed, restartable). */
  stop(): Promise<void>;
  /** One scheduler pass: starts due runs (without waiting for them) and returns their names. */
  tick(): Promise<string[]>;
  /** Runs a workflow now (even paused), in this process, and waits for the result. */
  runNow(name: string): Promise<RunResult>;
  /** Runs the last failed run again from its failed step. */
  restart(name: string): Promise<RunResult>;
  pause(name: string): Promise<{ changed: boolean }>;
  resume(name: string): Promise<{ changed: boolean }>;
  /** Marks runs of dead holders failed; returns how many. */
  recoverInterrupted(): Promise<number>;
  /** Resolves when every run this engine started has finished. */
  whenIdle(): Promise<void>;
  status(): Promise<WorkflowStatus[]>;
  readonly registry: WorkflowRegistry;
  readonly workflows: ScheduledWorkflow[];
  readonly holder: string;
}

export function resolveSchedules(registry: WorkflowRegistry, config: HeraldConfig): ScheduledWorkflow[] {
  const settings = config.workflows;
  for (const name of Object.keys(settings.overrides)) {
    if (!registry.get(name)) throw new AppError('CONFIG_INVALID', `workflows.overrides.${name}: no such workflow (known: ${registry.list().map((d) => d.name).join(', ')})`);
  }
  return registry.list().map((definition) => {
    const override = settings.overrides[definition.name];
    const where = override?.schedule ? `workflows.overrides.${definition.name}.schedule` : `workflow ${definition.name}`;
    return {
      definition,
      schedule: compileSchedule(override?.schedule ?? definition.schedule, settings.timezone, where),
      enabled: override?.enabled ?? true,
    };
  });
}

export function createWorkflowEngine(options: WorkflowEngineOptions): WorkflowEngine {
  const { store, config, clock, logger, nodeId } = options;
  const registry = options.registry ?? createWorkflowRegistry(builtinWorkflows());
  const workflows = resolveSchedules(registry, config);
  const settings = config.workflows;
  const leaseMs = settings.leaseSeconds * 1000;
  // One engine instance = one holder: two processes on one machine never mistake each other's lease.
  const holder = `${nodeId}/${randomId(6)}`;
  const ticker = options.ticker ?? intervalTicker(settings.tickSeconds * 1000, logger);
  const active = new Map<string, Promise<RunResult>>();
  let stopping = false;
  let stopTicker: (() => Promise<void>) | undefined;
  let registered = false;

  const env: RunEnvironment = { store, config, clock, logger, nodeId, holder, leaseMs, isStopping: () => stopping };

  async function register(): Promise<void> {
    if (registered) return;
    await ensureWorkflowRows(store, registry.list().map((d) => d.name), clock.now());
    registered = true;
  }

  async function recoverInterrupted(): Promise<number> {
    const now = clock.now();
    const orphans = (await findOrphanedRuns(store, now)).filter((run) => !(run.holder === holder && active.has(run.workflow)));
    for (const run of orphans) {
      const error = `interrupted: ${run.holder} stopped renewing its lease before the run finished`;
      const failedStep = await markRunInterrupted(store, run, error, now);
      logger.warn({ workflow: run.workflow, runId: run.id, holder: run.holder, failedStep }, 'workflow run interrupted by the death of its node');
      await notify({ ...run, failedStep, error }, now);
    }
    return orphans.length;
  }

  async function notify(run: { workflow: string; id: number; failedStep: number | null; error: string; started_at: number }, now: number): Promise<void> {
    const definition = registry.get(run.workflow);
    await notifyFailure({
      url: settings.webhookUrl,
      logger,
      fetch: options.fetch,
      notification: {
        event: 'workflow.failed',
        workflow: run.workflow,
        runId: run.id,
        step: run.failedStep,
        stepName: run.failedStep === null ? null : (definition?.steps[run.failedStep]?.name ?? null),
        error: run.error,
        nodeId,
        startedAt: new Date(run.started_at).toISOString(),
        failedAt: new Date(now).toISOString(),
      },
    });
  }

  /** Called with the lease held; always releases it. */
  function launch(definition: WorkflowDefinition, run: { trigger: RunTrigger; startStep: number; restartOf: number | null; slot: number | null; missed: number }): Promise<RunResult> {
    const promise = (async () => {
      let runId: number;
      try {
        runId = await insertRun(store, {
          workflow: definition.name,
          trigger: run.trigger,
          holder,
          scheduledFor: run.slot,
          missedSlots: run.missed,
          startStep: run.startStep,
          restartOf: run.restartOf,
          now: clock.now(),
        });
      } catch (error) {
        await releaseLease(store, definition.name, holder, clock.now());
        throw error;
      }
      if (run.missed > 1) logger.info({ workflow: definition.name, missed: run.missed }, 'catching up missed workflow slots with one run');
      try {
        const result = await executeRun(env, definition, runId, run.startStep);
        if (result.status === 'failed') {
          logger.error({ workflow: definition.name, runId, step: result.failedStepName, error: result.error }, 'workflow run failed');
          await notify({ workflow: definition.name, id: runId, failedStep: result.failedStep, error: result.error ?? 'failed', started_at: result.startedAt }, result.finishedAt);
        }
        return result;
      } finally {
        await releaseLease(store, definition.name, holder, clock.now());
      }
    })();
    active.set(definition.name, promise);
    const forget = () => {
      if (active.get(definition.name) === promise) active.delete(definition.name);
    };
    promise.then(forget, forget);
    return promise;
  }

  async function tick(): Promise<string[]> {
    if (stopping) return [];
    await register();
    await recoverInterrupted();
    const now = clock.now();
    for (const name of active.keys()) await renewLease(store, name, holder, now, leaseMs);
    const started: string[] = [];
    for (const { definition, schedule, enabled } of workflows) {
      if (stopping) break;
      if (!enabled || active.has(definition.name)) continue;
      const row = await getWorkflowRow(store, definition.name);
      if (!row || row.paused_at !== null) continue;
      const due = findDueSlot(schedule, row.last_due_at ?? row.created_at, now);
      if (!due) continue;
      if (!(await acquireLease(store, { name: definition.name, holder, now, leaseMs, slot: due.slot }))) continue;
      started.push(definition.name);
      launch(definition, { trigger: 'schedule', startStep: 0, restartOf: null, slot: due.slot, missed: due.missed }).catch((error) =>
        logger.error({ workflow: definition.name, err: error }, 'workflow run could not be recorded'),
      );
    }
    return started;
  }

  async function takeForManualRun(name: string): Promise<WorkflowDefinition> {
    const definition = registry.require(name);
    await register();
    if (active.has(name)) throw new AppError('INVALID_STATE', `workflow ${name} is already running on this node`);
    if (!(await acquireLease(store, { name, holder, now: clock.now(), leaseMs }))) {
      const row = await getWorkflowRow(store, name);
      throw new AppError('INVALID_STATE', `workflow ${name} is already running (lease held by ${row?.lease_holder ?? 'another node'})`);
    }
    return definition;
  }

  return {
    registry,
    workflows,
    holder,
    async start() {
      if (stopTicker) return;
      stopping = false;
      await register();
      await recoverInterrupted();
      stopTicker = ticker(tick);
    },
    async stop() {
      stopping = true;
      const stopTimer = stopTicker;
      stopTicker = undefined;
      await stopTimer?.();
      await Promise.allSettled([...active.values()]);
    },
    tick,
    async runNow(name) {
      const definition = await takeForManualRun(name);
      return launch(definition, { trigger: 'manual', startStep: 0, restartOf: null, slot: null, missed: 0 });
    },
    async restart(name) {
      registry.require(name);
      await register();
      await recoverInterrupted();
      const [last] = await listRuns(store, name, 1);
      if (!last || last.status !== 'failed') {
        throw new AppError('INVALID_STATE', `workflow ${name} has no failed last run to restart (last run: ${last ? last.status : 'none'})`);
      }
      const definition = await takeForManualRun(name);
      const startStep = Math.min(last.failed_step ?? last.start_step, definition.steps.length - 1);
      return launch(definition, { trigger: 'restart', startStep, restartOf: last.id, slot: null, missed: 0 });
    },
    async pause(name) {
      registry.require(name);
      await register();
      return { changed: await setPaused(store, name, clock.now(), clock.now()) };
    },
    async resume(name) {
      registry.require(name);
      await register();
      return { changed: await setPaused(store, name, null, clock.now()) };
    },
    recoverInterrupted,
    async whenIdle() {
      while (active.size > 0) await Promise.allSettled([...active.values()]);
    },
    async status() {
      await register();
      return describeWorkflows({ store, workflows, settings, now: clock.now(), activeHere: new Set(active.keys()) });
    },
  };
}
