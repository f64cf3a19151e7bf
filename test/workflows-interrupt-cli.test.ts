import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/database.ts';
import { getWorkflowRow, listRuns, listSteps } from '../src/workflows/workflow-store.ts';
import { runHerald } from './support/cli.ts';
import { postgresUnavailable } from './support/databases.ts';
import { postgresWithOperator } from './support/postgres-operator.ts';
import { waitFor } from './support/wait.ts';

// Ctrl-C on `herald workflows run` killed the process on the spot: its run stayed `running` and its
// lease held, so `herald workflows restart` was refused ("already running") for workflows.leaseSeconds.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');

describe.skipIf(postgresUnavailable)('Ctrl-C on herald workflows run', () => {
  let database: Awaited<ReturnType<typeof postgresWithOperator>>;
  let store: Store;
  let operator: pg.Client;

  beforeAll(async () => {
    database = await postgresWithOperator('wfint');
    ({ store, operator } = database);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('ends the run failed at its step and frees the lease, so restart works at once', async () => {
    // Holds cleanup in its first step, so Ctrl-C comes in the middle of a known step.
    await operator.query('begin');
    await operator.query('lock table deliveries in access exclusive mode');
    const child = spawn(process.execPath, [heraldBin, 'workflows', 'run', 'cleanup'], {
      env: { ...process.env, HERALD_DATABASE_URL: database.url, HERALD_CONFIG: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let gone = false;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once('exit', (code, signal) => {
        gone = true;
        done({ code, signal });
      }),
    );
    try {
      await waitFor(async () => {
        const [run] = await listRuns(store, 'cleanup', 1);
        return run !== undefined && (await listSteps(store, run.id)).some((step) => step.status === 'running');
      }, 'cleanup to be inside its first step');
      child.kill('SIGINT');
      await waitFor(() => gone || stderr.includes('SIGINT: stopping'), 'the run to take the signal (or die of it)');
    } finally {
      await operator.query('rollback');
    }
    expect(await exited).toEqual({ code: 1, signal: null });

    const [run] = await listRuns(store, 'cleanup', 1);
    // At a keepAlive() inside the step, or at the boundary after it, whichever comes first.
    expect(run).toMatchObject({ status: 'failed' });
    expect([0, 1]).toContain(run!.failed_step);
    expect(run!.error).toMatch(/: interrupted: the engine (is stopping|stopped before this step)$/);
    expect((await getWorkflowRow(store, 'cleanup'))?.lease_holder).toBeNull();
    const restart = await runHerald(database.url, ['workflows', 'restart', 'cleanup', '--json']);
    expect(restart.exitCode).toBe(0);
    expect(JSON.parse(restart.stdout.join('\n'))).toMatchObject({ status: 'succeeded' });
  }, 60_000);
});
