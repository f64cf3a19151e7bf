import type { HeraldMetrics } from '../metrics/registry.ts';
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
  listRunningRunsOf,
  listRuns,
  markRunInterrupted,
  releaseLease,
  renewLease,
  resetSlotsAhead,
  setPaused,
} from './workflow-store.ts';
import { builtinWorkflows } from './builtins/index.ts';
import { chosenRestartStep, decideStart, interruptedRuns, restartStep } from './engine-decisions.ts';
import type { FetchFunction } from './notify-webhook.ts';
import { createWorkflowRegistry, type WorkflowRegistry } from './registry.ts';
import { createRunLauncher } from './run-launcher.ts';
import type { RunEnvironment, RunResult } from './runner.ts';
import { compileSchedule, type Schedule } from './schedule.ts';
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
  /** This process's metrics registry, handed to the steps (createWorkflowEngine({...herald}) passes it). */
  metrics?: HeraldMetrics;
  /** How often a run renews its lease (default leaseSeconds / 3); tests make it short. */
  leaseRenewalMs?: number;
  /** How long stop() waits for a step that does not end; then its run is marked failed. Default 30 s. */
  stopTimeoutMs?: number;
}

export interface ScheduledWorkflow {
  definition: WorkflowDefinition;
  schedule: Schedule;
  enabled: boolean;
}

export interface WorkflowEngine {
  /** Registers the workflows, marks interrupted runs failed, and starts the timer. */
  start(): Promise<void>;
  /**
   * Stops the timer; running runs stop at their next step boundary (marked failed, restartable). A
   * step still running after stopTimeoutMs is abandoned: its run is marked failed and its lease freed.
   */
  stop(): Promise<void>;
  /** One scheduler pass: starts due runs (without waiting for them) and returns their names. */
  tick(): Promise<string[]>;
  /** Runs a workflow now (even paused), in this process, and waits for the result. */
  runNow(name: string): Promise<RunResult>;
  /**
   * Runs the last failed run again from its failed step; with `fromStep` (index or name), from that
   * step whatever the last run's outcome (never while one runs: the lease refuses it).
   */
  restart(name: string, options?: { fromStep?: number | string | undefined }): Promise<RunResult>;
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
  try {
    new Intl.DateTimeFormat('en', { timeZone: settings.timezone });
  } catch {
    throw new AppError(
      'CONFIG_INVALID',
      `workflows.timezone: unknown time zone "${settings.timezone}" (an IANA name, e.g. UTC or Europe/Paris)`,
    );
  }
  for (const name of Object.keys(settings.overrides)) {
    if (!registry.get(name))
      throw new AppError(
        'CONFIG_INVALID',
        `workflows.overrides.${name}: no such workflow (known: ${registry
          .list()
          .map((d) => d.name)
          .join(', ')})`,
      );
  }
  return registry.list().map((definition) => {
    const override = settings.overrides[definition.name];
    const where = override?.schedule
      ? `workflows.overrides.${definition.name}.schedule`
      : `workflow ${definition.name}`;
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
  let stopping = false;
  let stopTicker: (() => Promise<void>) | undefined;
  let registered = false;

  const env: RunEnvironment = {
    store,
    config,
    clock,
    logger,
    nodeId,
    holder,
    leaseMs,
    leaseRenewalMs: options.leaseRenewalMs,
    metrics: options.metrics,
    isStopping: () => stopping,
  };
  const launcher = createRunLauncher({
    store,
    clock,
    logger,
    nodeId,
    holder,
    registry,
    settings,
    env,
    fetch: options.fetch,
  });
  const active = launcher.active;

  async function register(): Promise<void> {
    if (registered) return;
    await ensureWorkflowRows(
      store,
      registry.list().map((d) => d.name),
      clock.now(),
    );
    registered = true;
  }

  async function recoverInterrupted(): Promise<number> {
    const now = clock.now();
    const orphans = interruptedRuns(await findOrphanedRuns(store, now), holder, active);
    for (const run of orphans) {
      const error = `interrupted: ${run.holder} stopped renewing its lease before the run finished`;
      const failedStep = await markRunInterrupted(store, run, error, now);
      logger.warn(
        { workflow: run.workflow, runId: run.id, holder: run.holder, failedStep },
        'workflow run interrupted by the death of its node',
      );
      await launcher.notify({ workflow: run.workflow, id: run.id, failedStep, error, startedAt: run.started_at }, now);
    }
    return orphans.length;
  }

  // A slot recorded ahead of this clock by more than a lease (a skew the docs call harmful) would
  // block every slot until real time caught up with it: a 5-minute workflow silent for a day.
  async function resetSlotsFromTheFuture(now: number): Promise<void> {
    const names = await resetSlotsAhead(store, now, leaseMs);
    if (names.length > 0)
      logger.warn(
        { workflows: names, now: new Date(now).toISOString() },
        'workflow slots recorded ahead of this clock (it went back, or a node was set ahead): scheduling from now',
      );
  }

  // A step that never ends (a hung socket, a bug) must not keep `herald start` from exiting on SIGTERM.
  async function abandonHungRuns(): Promise<void> {
    const waitMs = options.stopTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timed out'>((resolve) => (timer = setTimeout(resolve, waitMs, 'timed out')));
    const outcome = await Promise.race([Promise.allSettled([...active.values()]), timedOut]);
    clearTimeout(timer);
    if (outcome !== 'timed out') return;
    const now = clock.now();
    for (const run of await listRunningRunsOf(store, holder)) {
      const waited = waitMs >= 1_000 ? `${Math.round(waitMs / 1_000)} s` : `${waitMs} ms`;
      const error = `interrupted: the engine stopped and this step had not ended ${waited} later`;
      const failedStep = await markRunInterrupted(store, run, error, now);
      await releaseLease(store, run.workflow, holder, now);
      logger.warn({ workflow: run.workflow, runId: run.id, failedStep }, 'workflow run abandoned by a stopping engine');
      await launcher.notify({ workflow: run.workflow, id: run.id, failedStep, error, startedAt: run.started_at }, now);
    }
  }

  async function tick(): Promise<string[]> {
    if (stopping) return [];
    await register();
    await recoverInterrupted();
    const now = clock.now();
    await resetSlotsFromTheFuture(now);
    for (const name of active.keys()) await renewLease(store, name, holder, now, leaseMs);
    const started: string[] = [];
    for (const workflow of workflows) {
      if (stopping) break;
      const name = workflow.definition.name;
      if (!workflow.enabled || active.has(name)) continue;
      const decision = decideStart(workflow, await getWorkflowRow(store, name), false, now);
      if (decision.kind !== 'start') continue;
      if (!(await acquireLease(store, { name, holder, now, leaseMs, slot: decision.slot }))) continue;
      started.push(name);
      const request = {
        trigger: 'schedule',
        startStep: 0,
        restartOf: null,
        slot: decision.slot,
        missed: decision.missed,
      } as const;
      launcher
        .launch(workflow.definition, request)
        .catch((error) => logger.error({ workflow: name, err: error }, 'workflow run could not be recorded'));
    }
    return started;
  }

  async function takeForManualRun(name: string): Promise<WorkflowDefinition> {
    const definition = registry.require(name);
    await register();
    if (active.has(name)) throw new AppError('INVALID_STATE', `workflow ${name} is already running on this node`);
    if (!(await acquireLease(store, { name, holder, now: clock.now(), leaseMs }))) {
      const row = await getWorkflowRow(store, name);
      throw new AppError(
        'INVALID_STATE',
        `workflow ${name} is already running (lease held by ${row?.lease_holder ?? 'another node'})`,
      );
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
      await abandonHungRuns();
    },
    tick,
    async runNow(name) {
      registry.require(name);
      await register();
      // A CLI run is often the only engine there is: a run left `running` by a killed process is
      // marked interrupted here, or it would stay `running` in the history for good.
      await recoverInterrupted();
      const definition = await takeForManualRun(name);
      return launcher.launch(definition, { trigger: 'manual', startStep: 0, restartOf: null, slot: null, missed: 0 });
    },
    async restart(name, options = {}) {
      registry.require(name);
      await register();
      await recoverInterrupted();
      const [last] = await listRuns(store, name, 1);
      if (options.fromStep !== undefined) {
        const startStep = chosenRestartStep(options.fromStep, registry.require(name));
        const definition = await takeForManualRun(name);
        return launcher.launch(definition, {
          trigger: 'restart',
          startStep,
          restartOf: last?.id ?? null,
          slot: null,
          missed: 0,
        });
      }
      if (last?.status !== 'failed') {
        throw new AppError(
          'INVALID_STATE',
          `workflow ${name} has no failed last run to restart (last run: ${last ? last.status : 'none'}): \`herald workflows run ${name}\` runs it again from the first step, \`restart ${name} --from-step STEP\` from a chosen one`,
        );
      }
      const definition = await takeForManualRun(name);
      const startStep = restartStep(last, definition);
      return launcher.launch(definition, { trigger: 'restart', startStep, restartOf: last.id, slot: null, missed: 0 });
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
