import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../src/store/database.ts';
import { runHerald } from './support/cli.ts';
import { postgresUnavailable } from './support/databases.ts';
import { postgresWithOperator } from './support/postgres-operator.ts';
import { waitFor } from './support/wait.ts';

// `herald db maintain` killed with kill -9 midway left no trace: the run was recorded only when it
// ended. Its row is now written at the start and moved from step to step, so `herald db status` and
// the doctor say where it stopped.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');

describe.skipIf(postgresUnavailable)('a maintenance run killed midway', () => {
  let database: Awaited<ReturnType<typeof postgresWithOperator>>;
  let store: Store;
  let operator: pg.Client;

  beforeAll(async () => {
    database = await postgresWithOperator('maintkill');
    ({ store, operator } = database);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('shows in db status and the doctor as interrupted at its step, with its start', async () => {
    // Holds the maintenance at its first VACUUM, so it is killed in the middle of a known step.
    await operator.query('begin');
    await operator.query('lock table delivery_logs in access exclusive mode');
    const child = spawn(process.execPath, [heraldBin, 'db', 'maintain'], {
      env: { ...process.env, HERALD_DATABASE_URL: database.url, HERALD_CONFIG: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | null>((done) => child.once('exit', (_code, signal) => done(signal)));
    try {
      await waitFor(async () => {
        const row = await store.db.selectFrom('db_maintenance').select('step').executeTakeFirst();
        return row?.step === 'VACUUM (ANALYZE) delivery_logs';
      }, 'the maintenance to reach its VACUUM of delivery_logs');
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
    } finally {
      await operator.query('rollback');
    }

    const status = await runHerald(database.url, ['db', 'status', '--json']);
    expect(status.exitCode).toBe(0);
    const json = JSON.parse(status.stdout.join('\n')) as { lastMaintenance: Record<string, unknown> };
    expect(json.lastMaintenance).toMatchObject({
      source: 'cli',
      state: 'interrupted',
      step: 'VACUUM (ANALYZE) delivery_logs',
      owner: expect.stringMatching(new RegExp(`:${child.pid}$`)),
    });
    const text = await runHerald(database.url, ['db', 'status']);
    expect(text.stdout.join('\n')).toContain(
      `maintenance interrupted at VACUUM (ANALYZE) delivery_logs, started ${json.lastMaintenance.startedAt as string}`,
    );

    const doctor = await runHerald(database.url, ['doctor', '--json']);
    const { findings } = JSON.parse(doctor.stdout.join('\n')) as {
      findings: Array<{ subject: string; symptom: string }>;
    };
    expect(findings.find((f) => f.subject === 'database maintenance')?.symptom).toBe(
      `maintenance interrupted at VACUUM (ANALYZE) delivery_logs, started ${json.lastMaintenance.startedAt as string} (cli)`,
    );

    // Run again to the end: the new run is the last one, done.
    expect((await runHerald(database.url, ['db', 'maintain', '--json'])).exitCode).toBe(0);
    const after = await runHerald(database.url, ['db', 'status', '--json']);
    expect(JSON.parse(after.stdout.join('\n')).lastMaintenance).toMatchObject({ state: 'done' });
  }, 60_000);
});
