import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';
import { createImport, findOrCreateList, getImport, stagedSummary } from '../src/audience/audience-store.ts';
import { manualClock } from '../src/common/clock.ts';
import { getDelivery } from '../src/delivery/delivery-store.ts';
import { prepareDelivery, preparationStore } from '../src/delivery/preparation.ts';
import { openStore } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';
import { insertList } from './support/fixtures.ts';
import { waitFor } from './support/wait.ts';

// Issue 13 item 4: Ctrl-C never leaves work stuck. An interrupted preparation rolls back (delivery
// back to its previous state, logs removed); an interrupted import is failed with its staged rows
// deleted; a preparation whose process died is taken over at once (liveness lease).

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');

describeEachDialect('interrupted preparation and liveness lease', ({ store, url }) => {
  async function createDelivery(name: string, recipients: number): Promise<number> {
    await insertList(
      store(),
      `${name}-list`,
      Array.from({ length: recipients }, (_, i) => ({ email: `r${i}@${name}.example.com` })),
    );
    const run = await runHerald(url(), [
      'delivery',
      'create',
      '--name',
      name,
      '--from',
      'news@example.com',
      '--subject',
      'Hi',
      '--list',
      `${name}-list`,
      '--text-file',
      writeBody('hello'),
      '--json',
    ]);
    return run.json<{ id: number }>()[0]!.id;
  }

  it('an aborted preparation rolls back to edited with no logs, and says so', async () => {
    const id = await createDelivery('abort', 50);
    const controller = new AbortController();
    const outcome = prepareDelivery(preparationStore(store()), id, {
      batchSize: 10,
      clock: manualClock(Date.now()),
      isValidAddress: () => true,
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    await expect(outcome).rejects.toMatchObject({
      code: 'INTERRUPTED',
      message: expect.stringContaining('the delivery is edited again'),
    });
    expect((await getDelivery(store(), id)).state).toBe('edited');
    const logs = await store().db.selectFrom('delivery_logs').select('id').where('delivery_id', '=', id).execute();
    expect(logs).toEqual([]);
    expect((await runHerald(url(), ['delivery', 'prepare', String(id)])).exitCode).toBe(0);
  });

  it('a preparation whose process died is taken over at once; a live one is refused', async () => {
    const id = await createDelivery('dead', 5);
    const stale = Date.now() - 60_000;
    await store()
      .db.updateTable('deliveries')
      .set({ state: 'preparing', updated_at: stale })
      .where('id', '=', id)
      .execute();
    const retried = await runHerald(url(), ['delivery', 'prepare', String(id), '--json']);
    expect(retried.exitCode).toBe(0);
    expect(retried.json()[0]).toMatchObject({ kind: 'prepared', counts: { prepared: 5 } });

    await store()
      .db.updateTable('deliveries')
      .set({ state: 'preparing', updated_at: Date.now() })
      .where('id', '=', id)
      .execute();
    const live = await runHerald(url(), ['delivery', 'prepare', String(id)]);
    expect(live.exitCode).toBe(1);
    expect(live.stderr.join('\n')).toContain(`delivery ${id} is being prepared by a live process`);
  });

  it('an import whose process died is failed by the next import, once its lease ran out', async () => {
    const list = await findOrCreateList(store(), 'lease-list', Date.now());
    const dead = await createImport(store(), { listId: list.id, fileName: 'dead.csv', now: Date.now() - 120_000 });
    const live = await createImport(store(), { listId: list.id, fileName: 'live.csv', now: Date.now() });
    const csv = join(mkdtempSync(join(tmpdir(), 'herald-lease-')), 'next.csv');
    writeFileSync(csv, 'email\nnext@example.com\n');
    expect((await runHerald(url(), ['import', 'recipients', csv, '--list', 'lease-list'])).exitCode).toBe(0);
    expect(await getImport(store(), dead)).toMatchObject({
      state: 'failed',
      error: expect.stringContaining('its process stopped renewing its lease'),
    });
    expect(await getImport(store(), live)).toMatchObject({ state: 'running' });
  });
});

it('Ctrl-C during an import fails it and deletes its staged rows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-interrupt-'));
  const csv = join(dir, 'big.csv');
  const rows = ['email,city'];
  for (let i = 0; i < 400_000; i++) rows.push(`user${i}@example${i % 50}.com,City ${i}`);
  writeFileSync(csv, `${rows.join('\n')}\n`);
  const database = `sqlite:${join(dir, 'herald.db')}`;
  const child = spawn(process.execPath, [heraldBin, 'import', 'recipients', csv, '--list', 'big', '--json'], {
    env: { ...process.env, HERALD_DATABASE_URL: database, HERALD_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout.on('data', (chunk) => stdout.push(String(chunk)));
  child.stderr.on('data', (chunk) => stderr.push(String(chunk)));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const observer = openStore(database);
  try {
    await waitFor(async () => {
      try {
        return (await stagedSummary(observer, 1)).count > 0;
      } catch {
        return false; // the importing process has not created the tables yet
      }
    }, 'the first staged batch');
    child.kill('SIGINT');
    expect(await exited).toBe(1);
    expect(JSON.parse(stdout.join('').trim())).toMatchObject({ error: { code: 'INTERRUPTED', importId: 1 } });
    expect(stderr.join('')).toContain('SIGINT: stopping at the next batch and rolling back');
    await migrateToLatest(observer);
    expect(await getImport(observer, 1)).toMatchObject({
      state: 'failed',
      error: expect.stringContaining('INTERRUPTED'),
    });
    expect((await stagedSummary(observer, 1)).count).toBe(0);
  } finally {
    await observer.close();
  }
}, 120_000);

function writeBody(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-body-'));
  const file = join(dir, 'body.txt');
  writeFileSync(file, text);
  return file;
}
