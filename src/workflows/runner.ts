import type { HeraldMetrics } from '../metrics/registry.ts';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';
import { createRunLog, cutLongMessage } from './run-log.ts';
import { finishRun, finishStep, insertStep, renewLease } from './workflow-store.ts';
import type { StepContext, StepOutcome, WorkflowDefinition } from './types.ts';
import type { RunStatus } from '../store/tables.ts';

// Executes the steps of one run in order, from `startStep`, persisting each step and its log lines.
// The first failed step ends the run; the lease is renewed before each step, whenever a long step
// calls keepAlive(), and on a timer while the run goes (a single long statement, a slow peer, and no
// scheduler tick in `herald workflows run`), so a live holder never loses it and a dead one loses it
// within leaseMs.

export interface RunEnvironment {
  store: Store;
  config: HeraldConfig;
  clock: Clock;
  logger: Logger;
  nodeId: string;
  holder: string;
  leaseMs: number;
  /** How often the lease is renewed while a run goes, whatever its steps do (default leaseMs / 3). */
  leaseRenewalMs?: number | undefined;
  /** This process's metrics registry, handed to steps that measure something (mid-sourcing pushes). */
  metrics?: HeraldMetrics | undefined;
  /** True once the engine is stopping: the run ends at the next step boundary or keepAlive(). */
  isStopping(): boolean;
}

export interface RunResult {
  runId: number;
  workflow: string;
  status: Exclude<RunStatus, 'running'>;
  failedStep: number | null;
  failedStepName: string | null;
  error: string | null;
  startedAt: number;
  finishedAt: number;
}

export async function executeRun(
  env: RunEnvironment,
  definition: WorkflowDefinition,
  runId: number,
  startStep: number,
): Promise<RunResult> {
  const stopRenewing = renewWhileRunning(env, definition.name);
  try {
    return await executeSteps(env, definition, runId, startStep);
  } finally {
    stopRenewing();
  }
}

/** Renews the run's lease every leaseRenewalMs until stopped, or until it is no longer this holder's. */
function renewWhileRunning(env: RunEnvironment, workflow: string): () => void {
  const timer = setInterval(
    () => {
      renewLease(env.store, workflow, env.holder, env.clock.now(), env.leaseMs).then(
        (held) => {
          if (!held) clearInterval(timer);
        },
        // The database is away for a moment: a later renewal succeeds, or the next step boundary fails.
        () => {},
      );
    },
    env.leaseRenewalMs ?? Math.max(1_000, Math.floor(env.leaseMs / 3)),
  );
  // A hung step abandoned by a stopping engine must not keep the process alive.
  timer.unref();
  return () => clearInterval(timer);
}

async function executeSteps(
  env: RunEnvironment,
  definition: WorkflowDefinition,
  runId: number,
  startStep: number,
): Promise<RunResult> {
  const { store, clock } = env;
  const startedAt = clock.now();
  let lastRenewal = startedAt;
  let anyDone = false;
  let failure: { step: number; error: string } | undefined;
  const runLog = createRunLog(store, runId, env.config.workflows.logLinesPerRun, () => clock.now());

  const renew = async (): Promise<void> => {
    const now = clock.now();
    if (!(await renewLease(store, definition.name, env.holder, now, env.leaseMs))) {
      throw new Error(`lease lost: another node took over workflow ${definition.name}`);
    }
    lastRenewal = now;
  };

  for (let index = startStep; index < definition.steps.length; index += 1) {
    const step = definition.steps[index]!;
    if (env.isStopping()) {
      failure = { step: index, error: 'interrupted: the engine stopped before this step' };
      break;
    }
    let outcome: StepOutcome;
    try {
      await renew();
      await insertStep(store, runId, index, step.name, clock.now());
      const context: StepContext = {
        store,
        config: env.config,
        clock,
        logger: env.logger,
        nodeId: env.nodeId,
        ...(env.metrics && { metrics: env.metrics }),
        runId,
        log: (message, level = 'info') => runLog.append(index, level, message),
        keepAlive: async () => {
          if (env.isStopping()) throw new Error('interrupted: the engine is stopping');
          if (clock.now() - lastRenewal >= env.leaseMs / 3) await renew();
          await new Promise((resolve) => setImmediate(resolve));
        },
      };
      outcome = await step.run(context);
    } catch (error) {
      outcome = { kind: 'failed', error: describeError(error) };
    }
    const now = clock.now();
    if (outcome.kind === 'failed') {
      const error = cutLongMessage(outcome.error);
      await finishStep(store, runId, index, { status: 'failed', summary: null, error, now });
      failure = { step: index, error };
      break;
    }
    if (outcome.kind === 'skipped') {
      await finishStep(store, runId, index, { status: 'skipped', summary: outcome.reason, error: null, now });
    } else {
      anyDone = true;
      await finishStep(store, runId, index, {
        status: 'succeeded',
        summary: outcome.summary ?? null,
        error: null,
        now,
      });
    }
  }

  const finishedAt = clock.now();
  const status: RunResult['status'] = failure
    ? 'failed'
    : anyDone || definition.steps.length === startStep
      ? 'succeeded'
      : 'skipped';
  const error = failure ? `step ${failure.step} (${definition.steps[failure.step]!.name}): ${failure.error}` : null;
  await finishRun(store, runId, { status, failedStep: failure?.step ?? null, error, now: finishedAt });
  return {
    runId,
    workflow: definition.name,
    status,
    failedStep: failure?.step ?? null,
    failedStepName: failure ? definition.steps[failure.step]!.name : null,
    error,
    startedAt,
    finishedAt,
  };
}
