import type { HeraldMetrics } from '../metrics/registry.ts';
import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';

// A technical workflow is code: an ordered list of steps, each idempotent, so a failed run can be
// restarted from the step that failed without redoing the ones before it.

/** What a step reports. `skipped` is not a success: it says the step had nothing it could do (e.g. not configured). */
export type StepOutcome =
  | { kind: 'done'; summary?: string }
  | { kind: 'skipped'; reason: string }
  | { kind: 'failed'; error: string };

export interface StepContext {
  store: Store;
  config: HeraldConfig;
  clock: Clock;
  logger: Logger;
  nodeId: string;
  /** This process's metrics registry (absent in tests that build an engine without one). */
  metrics?: HeraldMetrics;
  runId: number;
  /** Writes a line to the run's step log (shown by `herald workflows logs NAME`). */
  log(message: string, level?: 'info' | 'warn' | 'error'): Promise<void>;
  /** Long steps call this between batches: it extends the lease and lets other I/O run. */
  keepAlive(): Promise<void>;
}

export interface StepDefinition {
  name: string;
  run(context: StepContext): Promise<StepOutcome>;
}

export interface WorkflowDefinition {
  name: string;
  description: string;
  /** Default cron expression (5 or 6 fields); `workflows.overrides.<name>.schedule` replaces it. */
  schedule: string;
  steps: StepDefinition[];
}

export type WorkflowState = 'idle' | 'running' | 'paused' | 'failed' | 'disabled';

/** `not_configured`: the last run only skipped steps (a slot waiting for its feature). */
export type WorkflowHealth = 'ok' | 'failed' | 'overdue' | 'paused_too_long' | 'not_configured';

export function done(summary?: string): StepOutcome {
  return summary === undefined ? { kind: 'done' } : { kind: 'done', summary };
}

export function skipped(reason: string): StepOutcome {
  return { kind: 'skipped', reason };
}
