import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';
import type { RunTrigger } from '../store/tables.ts';
import { failureNotification } from './engine-decisions.ts';
import { notifyFailure, type FetchFunction } from './notify-webhook.ts';
import type { WorkflowRegistry } from './registry.ts';
import { executeRun, type RunEnvironment, type RunResult } from './runner.ts';
import type { WorkflowDefinition } from './types.ts';
import { insertRun, releaseLease } from './workflow-store.ts';

// Starts a run whose lease the engine took: records it, executes its steps (runner.ts), sends the
// failure webhook when it fails, and always releases the lease. Keeps the runs active here.

export interface RunRequest {
  trigger: RunTrigger;
  startStep: number;
  restartOf: number | null;
  slot: number | null;
  missed: number;
}

export interface RunLauncherOptions {
  store: Store;
  clock: Clock;
  logger: Logger;
  nodeId: string;
  holder: string;
  registry: WorkflowRegistry;
  settings: HeraldConfig['workflows'];
  env: RunEnvironment;
  fetch?: FetchFunction | undefined;
}

export interface RunLauncher {
  /** Called with the lease held; always releases it. */
  launch(definition: WorkflowDefinition, run: RunRequest): Promise<RunResult>;
  /** The failure webhook for one failed run (best effort). */
  notify(
    run: { workflow: string; id: number; failedStep: number | null; error: string; startedAt: number },
    now: number,
  ): Promise<void>;
  /** Runs started here and not finished, by workflow name. */
  readonly active: ReadonlyMap<string, Promise<RunResult>>;
}

export function createRunLauncher(options: RunLauncherOptions): RunLauncher {
  const { store, clock, logger, holder } = options;
  const active = new Map<string, Promise<RunResult>>();

  async function notify(
    run: { workflow: string; id: number; failedStep: number | null; error: string; startedAt: number },
    now: number,
  ): Promise<void> {
    await notifyFailure({
      url: options.settings.webhookUrl,
      logger,
      fetch: options.fetch,
      notification: failureNotification(run, options.registry.get(run.workflow), options.nodeId, now),
    });
  }

  async function record(definition: WorkflowDefinition, run: RunRequest): Promise<number> {
    try {
      return await insertRun(store, {
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
  }

  async function run(definition: WorkflowDefinition, request: RunRequest): Promise<RunResult> {
    const runId = await record(definition, request);
    if (request.missed > 1)
      logger.info(
        { workflow: definition.name, missed: request.missed },
        'catching up missed workflow slots with one run',
      );
    try {
      const result = await executeRun(options.env, definition, runId, request.startStep);
      if (result.status === 'failed') {
        logger.error(
          { workflow: definition.name, runId, step: result.failedStepName, error: result.error },
          'workflow run failed',
        );
        const failed = { workflow: definition.name, id: runId, failedStep: result.failedStep };
        await notify({ ...failed, error: result.error ?? 'failed', startedAt: result.startedAt }, result.finishedAt);
      }
      return result;
    } finally {
      await releaseLease(store, definition.name, holder, clock.now());
    }
  }

  return {
    active,
    notify,
    launch(definition, request) {
      const promise = run(definition, request);
      active.set(definition.name, promise);
      const forget = () => {
        if (active.get(definition.name) === promise) active.delete(definition.name);
      };
      promise.then(forget, forget);
      return promise;
    },
  };
}
