import { expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { createWorkflowRegistry } from '../src/workflows/registry.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { describeEachDialect } from './support/databases.ts';

const now = Date.parse('2026-08-01T12:00:00Z');

describeEachDialect('herald workflows', (context) => {
  const cli = () => {
    const lines: string[] = [];
    const errors: string[] = [];
    const cliContext: CliContext = {
      output: { out: (line) => lines.push(line), err: (line) => errors.push(line) },
      open: () =>
        openHerald({
          config: parseConfig({ database: { url: context.url() } }, 'test'),
          logger: silentLogger,
          clock: manualClock(now),
        }),
    };
    return { lines, errors, run: (...args: string[]) => runCli(['node', 'herald', ...args], cliContext) };
  };

  it('lists every built-in workflow with its state, health and next run', async () => {
    const { lines, run } = cli();
    expect(await run('workflows', 'list', '--json')).toBe(0);
    const workflows = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(workflows.map((w) => w.name)).toEqual([
      'cleanup',
      'deliverability-update',
      'delivery-manager',
      'stats',
      'tracking',
      'mid-sync-counters',
      'mid-sync-logs',
    ]);
    expect(workflows.find((w) => w.name === 'cleanup')).toMatchObject({
      state: 'idle',
      health: 'ok',
      schedule: '0 4 * * *',
      timezone: 'UTC',
      nextRunAt: '2026-08-02T04:00:00.000Z',
      lastRun: null,
      lastError: null,
    });
  });

  it('shows a failed workflow with its error in list --json, and restarts it', async () => {
    // A failure of "cleanup" recorded by an engine on another node.
    const herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock: manualClock(now),
    });
    const failingCleanup = createWorkflowRegistry([
      {
        name: 'cleanup',
        description: 't',
        schedule: '0 4 * * *',
        steps: [{ name: 'expire-deliveries', run: async () => ({ kind: 'failed', error: 'database is locked' }) }],
      },
    ]);
    const engine = createWorkflowEngine({ ...herald, registry: failingCleanup, ticker: manualTicker });
    const failed = await engine.runNow('cleanup');
    await herald.close();

    const { lines, run } = cli();
    expect(await run('workflows', 'list', '--json')).toBe(0);
    const cleanup = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((w) => w.name === 'cleanup')!;
    expect(cleanup).toMatchObject({
      state: 'failed',
      health: 'failed',
      lastError: 'step 0 (expire-deliveries): database is locked',
    });
    expect(cleanup.lastRun).toMatchObject({ id: failed.runId, status: 'failed', failedStep: 0, durationMs: 0 });

    const text = cli();
    expect(await text.run('workflows')).toBe(0);
    expect(text.lines[0]).toMatch(/^NAME\s+STATE\s+HEALTH/);
    expect(text.lines.find((l) => l.startsWith('cleanup'))).toMatch(/failed\s+failed.*database is locked$/);

    const restart = cli();
    expect(await restart.run('workflows', 'restart', 'cleanup', '--json')).toBe(0);
    expect(JSON.parse(restart.lines[0]!)).toMatchObject({ workflow: 'cleanup', status: 'succeeded', failedStep: null });
    const show = cli();
    expect(await show.run('workflows', 'show', 'cleanup', '--json')).toBe(0);
    const shown = JSON.parse(show.lines[0]!);
    expect(shown).toMatchObject({ state: 'idle', health: 'ok' });
    expect(shown.runs.map((r: { trigger: string; status: string }) => `${r.trigger}:${r.status}`)).toEqual([
      'restart:succeeded',
      'manual:failed',
    ]);
    expect(shown.lastRunSteps[0]).toMatchObject({ index: 0, name: 'expire-deliveries', status: 'succeeded' });
  });

  it('restarts from a chosen step, by index or name, after any outcome; an unknown step is refused', async () => {
    const shown = cli();
    expect(await shown.run('workflows', 'show', 'cleanup', '--json')).toBe(0);
    const steps = (JSON.parse(shown.lines[0]!) as { steps: Array<{ index: number; name: string }> }).steps;
    expect(steps.length).toBeGreaterThan(2);
    const last = steps[steps.length - 1]!;

    const byName = cli();
    expect(await byName.run('workflows', 'restart', 'cleanup', '--from-step', last.name, '--json')).toBe(0);
    expect(JSON.parse(byName.lines[0]!)).toMatchObject({ workflow: 'cleanup', status: 'succeeded' });
    const byIndex = cli();
    expect(await byIndex.run('workflows', 'restart', 'cleanup', '--from-step', '1', '--json')).toBe(0);
    const show = cli();
    expect(await show.run('workflows', 'show', 'cleanup', '--json')).toBe(0);
    const runs = (JSON.parse(show.lines[0]!) as { runs: Array<{ trigger: string; startStep: number; status: string }> })
      .runs;
    expect(runs.slice(0, 2).map((r) => [r.trigger, r.startStep, r.status])).toEqual([
      ['restart', 1, 'succeeded'],
      ['restart', last.index, 'succeeded'],
    ]);

    const unknown = cli();
    expect(await unknown.run('workflows', 'restart', 'cleanup', '--from-step', 'no-such-step')).not.toBe(0);
    expect(unknown.errors.join('\n')).toContain('fromStep: workflow cleanup has no step "no-such-step" (steps: 0 ');
    const after = cli();
    expect(await after.run('workflows', 'show', 'cleanup', '--json')).toBe(0);
    expect((JSON.parse(after.lines[0]!) as { runs: unknown[] }).runs).toHaveLength(runs.length);
  });

  it('runs, pauses, resumes and shows logs', async () => {
    const run1 = cli();
    expect(await run1.run('workflows', 'run', 'delivery-manager', '--json')).toBe(0);
    expect(JSON.parse(run1.lines[0]!)).toMatchObject({ workflow: 'delivery-manager', status: 'succeeded' });
    const pause = cli();
    expect(await pause.run('workflows', 'pause', 'stats', '--json')).toBe(0);
    expect(JSON.parse(pause.lines[0]!)).toEqual({ name: 'stats', changed: true, state: 'paused' });
    const resume = cli();
    expect(await resume.run('workflows', 'resume', 'stats', '--json')).toBe(0);
    expect(JSON.parse(resume.lines[0]!)).toEqual({ name: 'stats', changed: true, state: 'idle' });
    const runStats = cli();
    expect(await runStats.run('workflows', 'run', 'stats')).toBe(0);
    const logs = cli();
    expect(await logs.run('workflows', 'logs', 'stats', '--json')).toBe(0);
    expect(JSON.parse(logs.lines[0]!)).toMatchObject({ stepName: 'aggregate-hourly-throughput', level: 'info' });
    const unknown = cli();
    expect(await unknown.run('workflows', 'show', 'nope', '--json')).toBe(1);
    expect(JSON.parse(unknown.lines[0]!).error.code).toBe('NOT_FOUND');
  });

  it('refuses a --runs or --run that is not a positive whole number, naming the option', async () => {
    for (const args of [
      ['show', 'stats', '--runs', 'abc'],
      ['show', 'stats', '--runs', '-5'],
      ['logs', 'stats', '--run', '1e400'],
      ['logs', 'stats', '--run', '0'],
    ]) {
      const bad = cli();
      expect(await bad.run('workflows', ...args, '--json')).toBe(1);
      const error = JSON.parse(bad.lines[0]!).error as { code: string; message: string };
      expect(error.code).toBe('INPUT_INVALID');
      expect(error.message).toBe(`${args[2]} must be a positive whole number (got "${args[3]}")`);
    }
  });
});
