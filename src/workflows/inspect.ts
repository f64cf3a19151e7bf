import { AppError } from '../common/errors.ts';
import type { Store } from '../store/database.ts';
import type { WorkflowEngine } from './engine.ts';
import type { RunResult } from './runner.ts';
import { runView } from './status.ts';
import { getRun, listRuns, listStepLogs, listSteps } from './workflow-store.ts';

// What `herald workflows show|logs|run` and the API show of a workflow: its steps, last run's steps,
// recent runs, a run's log lines, a run's result.

export async function showWorkflow(store: Store, engine: WorkflowEngine, name: string, runCount: number) {
  const definition = engine.registry.require(name);
  const status = (await engine.status()).find((s) => s.name === name)!;
  const runs = (await listRuns(store, name, runCount)).map(runView);
  const lastSteps = status.lastRun ? await listSteps(store, status.lastRun.id) : [];
  return {
    ...status,
    steps: definition.steps.map((s, index) => ({ index, name: s.name })),
    lastRunSteps: lastSteps.map((s) => ({
      index: s.step_index,
      name: s.name,
      status: s.status,
      summary: s.summary,
      error: s.error,
      durationMs: s.finished_at === null ? null : s.finished_at - s.started_at,
    })),
    runs,
  };
}

/** The log lines of a workflow's run (`runId`), or of its last run. */
export async function workflowLogs(store: Store, engine: WorkflowEngine, name: string, runId?: number) {
  engine.registry.require(name);
  const run = runId !== undefined ? await getRun(store, runId) : (await listRuns(store, name, 1))[0];
  if (!run || run.workflow !== name)
    throw new AppError(
      'NOT_FOUND',
      runId !== undefined ? `workflow ${name} has no run ${runId}` : `workflow ${name} has not run yet`,
    );
  const steps = new Map((await listSteps(store, run.id)).map((s) => [s.step_index, s.name]));
  return (await listStepLogs(store, run.id)).map((entry) => ({
    runId: run.id,
    step: entry.step_index,
    stepName: steps.get(entry.step_index) ?? String(entry.step_index),
    level: entry.level,
    at: new Date(entry.at).toISOString(),
    message: entry.message,
  }));
}

export function runResultView(result: RunResult) {
  return {
    workflow: result.workflow,
    runId: result.runId,
    status: result.status,
    failedStep: result.failedStep,
    failedStepName: result.failedStepName,
    error: result.error,
    startedAt: new Date(result.startedAt).toISOString(),
    finishedAt: new Date(result.finishedAt).toISOString(),
    durationMs: result.finishedAt - result.startedAt,
  };
}
