import type { Command } from 'commander';
import type { Herald } from '../main.ts';
import { runResultView, showWorkflow, workflowLogs } from '../workflows/inspect.ts';
import { createWorkflowEngine, type WorkflowEngine } from '../workflows/engine.ts';
import type { RunResult } from '../workflows/runner.ts';
import type { WorkflowStatus } from '../workflows/status.ts';
import { manualTicker } from '../workflows/ticker.ts';
import { CliExit, interruptible, positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald workflows ...`: state, health, runs and logs of the technical workflows. `run` and
// `restart` execute the workflow in this process, under the same database lease as the engine of
// `herald start`, so they never overlap with a scheduled run on any node.

export function registerWorkflowsCommands(program: Command, context: CliContext): void {
  const workflows = program.command('workflows').description('technical workflows: state, health, runs, logs');

  workflows
    .command('list', { isDefault: true })
    .description('state, health, last run and its duration, next run, last error of every workflow')
    .option('--json', 'NDJSON: one workflow status per line')
    .action(async (options, command: Command) => {
      await withEngine(context, command, async (_herald, engine) => {
        const statuses = await engine.status();
        if (options.json) for (const status of statuses) printJson(context, status);
        else for (const line of formatList(statuses)) context.output.out(line);
      });
    });

  workflows
    .command('show <name>')
    .description('one workflow: its steps, status and recent runs')
    .option('--runs <n>', 'how many recent runs', '10')
    .option('--json', 'print one JSON object')
    .action(async (name: string, options, command: Command) => {
      await withEngine(context, command, async (herald, engine) => {
        const out = await showWorkflow(herald.store, engine, name, positiveInteger(options.runs, '--runs'));
        const { runs } = out;
        if (options.json) printJson(context, out);
        else {
          for (const line of formatList([out])) context.output.out(line);
          context.output.out(`steps: ${out.steps.map((s) => `${s.index} ${s.name}`).join(', ')}`);
          for (const s of out.lastRunSteps)
            context.output.out(
              `  step ${s.index} ${s.name}: ${s.status}${s.summary ? ` — ${s.summary}` : ''}${s.error ? ` — ${s.error}` : ''}`,
            );
          for (const r of runs)
            context.output.out(
              `  run ${r.id} ${r.trigger} ${r.status} ${r.startedAt} ${r.durationMs ?? '-'} ms${r.error ? ` ${r.error}` : ''}`,
            );
        }
      });
    });

  for (const [verb, description] of [
    ['run', 'run a workflow now, here, and wait for it'],
    ['restart', 'run the last failed run again from its failed step (or from --from-step)'],
  ] as const) {
    const subcommand = workflows
      .command(`${verb} <name>`)
      .description(description)
      .option('--json', 'print the run result as JSON');
    if (verb === 'restart')
      subcommand.option('--from-step <step>', 'restart from this step (index or name, see `workflows show`)');
    subcommand.action(async (name: string, options, command: Command) => {
      await withEngine(context, command, async (_herald, engine) => {
        // Ctrl-C or SIGTERM stops the run at its next batch or step, recorded failed with its lease
        // freed, so `restart` resumes it at once instead of waiting for the lease to expire.
        const result = await interruptible(context, (signal) => {
          signal.addEventListener('abort', () => engine.stop().catch(() => {}), { once: true });
          return verb === 'run'
            ? engine.runNow(name)
            : engine.restart(name, { fromStep: options.fromStep as string | undefined });
        });
        if (options.json) printJson(context, resultJson(result));
        else context.output.out(formatResult(result));
        if (result.status === 'failed') throw new CliExit(1);
      });
    });
  }

  for (const verb of ['pause', 'resume'] as const) {
    workflows
      .command(`${verb} <name>`)
      .description(
        verb === 'pause' ? 'stop scheduling it (a running run finishes)' : 'schedule it again from the next slot',
      )
      .option('--json', 'print {"name","changed","state"}')
      .action(async (name: string, options, command: Command) => {
        await withEngine(context, command, async (_herald, engine) => {
          const { changed } = verb === 'pause' ? await engine.pause(name) : await engine.resume(name);
          const state = (await engine.status()).find((s) => s.name === name)!.state;
          if (options.json) printJson(context, { name, changed, state });
          else
            context.output.out(
              changed
                ? `${name}: ${verb}d (state ${state})`
                : `${name}: already ${verb === 'pause' ? 'paused' : 'not paused'} (state ${state})`,
            );
        });
      });
  }

  workflows
    .command('logs <name>')
    .description('step log lines of the last run (or --run ID)')
    .option('--run <id>', 'a run id from `workflows show`')
    .option('--json', 'print NDJSON, one line per log entry')
    .action(async (name: string, options, command: Command) => {
      await withEngine(context, command, async (herald, engine) => {
        const runId = options.run === undefined ? undefined : positiveInteger(options.run, '--run');
        for (const entry of await workflowLogs(herald.store, engine, name, runId)) {
          if (options.json) printJson(context, entry);
          else context.output.out(`${entry.at} ${entry.level.padEnd(5)} [${entry.stepName}] ${entry.message}`);
        }
      });
    });
}

async function withEngine(
  context: CliContext,
  command: Command,
  action: (herald: Herald, engine: WorkflowEngine) => Promise<void>,
): Promise<void> {
  await withHerald(context, command, async (herald) => {
    const engine = createWorkflowEngine({ ...herald, ticker: manualTicker });
    await action(herald, engine);
  });
}

const resultJson = runResultView;

function formatResult(result: RunResult): string {
  const base = `${result.workflow}: run ${result.runId} ${result.status} in ${result.finishedAt - result.startedAt} ms`;
  return result.error ? `${base}: ${result.error}` : base;
}

function formatList(statuses: WorkflowStatus[]): string[] {
  const lines = [['NAME', 'STATE', 'HEALTH', 'LAST RUN', 'DURATION', 'NEXT RUN', 'LAST ERROR']];
  for (const s of statuses) {
    lines.push([
      s.name,
      s.state,
      s.health,
      s.lastRun ? `${s.lastRun.startedAt} ${s.lastRun.status}` : '-',
      s.lastRun?.durationMs != null ? `${s.lastRun.durationMs} ms` : '-',
      s.nextRunAt ?? '-',
      s.lastError ?? '',
    ]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) =>
    l
      .map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
