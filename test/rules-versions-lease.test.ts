import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { CliContext } from '../src/cli/context.ts';
import { runCli } from '../src/cli/main.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { listVersions } from '../src/rules-versions/rule-version-store.ts';
import { getWorkflowRow } from '../src/workflows/workflow-store.ts';
import { deliverabilityUpdateWorkflow } from '../src/workflows/builtins/deliverability-update.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { createWorkflowRegistry } from '../src/workflows/registry.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { done } from '../src/workflows/types.ts';
import { describeEachDialect } from './support/databases.ts';

// `herald rules update` takes the deliverability-update workflow's lease (the one the engine takes):
// it refuses while a run of the workflow holds it, and releases it when it is done.

const pack = `rules:
  - name: example-isp
    mask: "*.mx.example-isp.test"
    maxConnections: 2
    maxMessagesPerHour: 500
`;

describeEachDialect('herald rules update and the deliverability-update lease', (context) => {
  it('refuses while a run holds the lease (naming the holder and since when), runs and releases it once the lease is free', async () => {
    const store = context.store();
    const root = mkdtempSync(join(tmpdir(), 'herald-rules-lease-'));
    const source = join(root, 'source');
    mkdirSync(source);
    writeFileSync(join(source, 'mx.yaml'), pack);
    const config = parseConfig(
      {
        database: { url: context.url() },
        shaping: { siteRulesDir: join(root, 'mx') },
        bounce: { siteRulesFile: join(root, 'bounce.yaml') },
      },
      'test',
    );
    const clock = manualClock(Date.parse('2026-04-01T03:30:00Z'));

    const herald = async (...args: string[]) => {
      const stdout: string[] = [];
      const stderr: string[] = [];
      const cli: CliContext = {
        output: { out: (line) => stdout.push(line), err: (line) => stderr.push(line) },
        open: () => openHerald({ config, logger: silentLogger, clock }),
      };
      const exitCode = await runCli(['node', 'herald', ...args], cli);
      return {
        exitCode,
        stdout,
        stderr,
        json: () =>
          stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>),
      };
    };

    // A run of the workflow by the real engine, held inside its step until the test lets it go.
    let enteredStep!: () => void;
    const inStep = new Promise<void>((resolve) => (enteredStep = resolve));
    let finishStep!: () => void;
    const stepMayFinish = new Promise<void>((resolve) => (finishStep = resolve));
    const blocking = {
      ...deliverabilityUpdateWorkflow,
      steps: [
        {
          name: 'update-rule-packs',
          run: async () => {
            enteredStep();
            await stepMayFinish;
            return done('held');
          },
        },
      ],
    };
    const engine = createWorkflowEngine({
      store,
      config,
      clock,
      logger: silentLogger,
      nodeId: 'node-a',
      registry: createWorkflowRegistry([blocking]),
      ticker: manualTicker,
    });
    const run = engine.runNow('deliverability-update');
    await inStep;
    clock.advance(60_000); // within the engine's 120 s lease

    const refusedJson = await herald('rules', 'update', '--source', source, '--json');
    expect(refusedJson.exitCode).toBe(1);
    const [error] = refusedJson.json();
    expect(error).toMatchObject({ error: { code: 'INVALID_STATE' } });
    const message = (error as { error: { message: string } }).error.message;
    expect(message).toMatch(
      /^workflow deliverability-update is running right now \(run #\d+, lease held by node-a\/[\w-]+ since 2026-04-01T03:30:00\.000Z\); try again when it has finished$/,
    );
    expect(message).toContain(engine.holder);
    const refusedText = await herald('rules', 'update', '--source', source);
    expect(refusedText.exitCode).toBe(1);
    expect(refusedText.stderr.join('\n')).toContain(`lease held by ${engine.holder} since 2026-04-01T03:30:00.000Z`);
    // Nothing was loaded, and the run still holds its lease.
    expect(await listVersions(store, { limit: 10 })).toEqual([]);
    expect((await getWorkflowRow(store, 'deliverability-update'))?.lease_holder).toBe(engine.holder);

    finishStep();
    expect((await run).status).toBe('succeeded');
    expect((await getWorkflowRow(store, 'deliverability-update'))?.lease_holder).toBeNull();

    const updated = await herald('rules', 'update', '--source', source, '--json');
    expect(updated.exitCode).toBe(0);
    expect(updated.json()[0]).toMatchObject({ kinds: [{ kind: 'mx', outcome: 'updated' }] });
    const row = await getWorkflowRow(store, 'deliverability-update');
    expect(row).toMatchObject({ lease_holder: null, lease_expires_at: null });
    // The engine can take its lease again right away.
    expect((await engine.runNow('deliverability-update')).status).toBe('succeeded');
    await engine.stop();
  });
});
