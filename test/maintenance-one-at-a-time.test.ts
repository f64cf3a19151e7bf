import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/common/clock.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Store } from '../src/store/database.ts';
import { runMaintenance } from '../src/workflows/maintenance.ts';
import { openMigratedDatabase, postgresUnavailable, type TestDatabase } from './support/databases.ts';

// Two maintenance runs at once (`herald db maintain` while the cleanup workflow's run, the
// dashboard's button): the second waited on the first one's locks and failed as a lock timeout
// blaming "the session holding the lock", which was the other maintenance. It is now refused at
// once, naming the run in progress, with nothing done; the first finishes untouched.

describe.skipIf(postgresUnavailable)('database maintenance on PostgreSQL', () => {
  let database: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    ({ store, database } = await openMigratedDatabase('postgres'));
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('runs one at a time: a second run is refused naming the first, which finishes', async () => {
    const config = parseConfig({}, 'test');
    let pause: (() => void) | undefined;
    let paused: () => void = () => {};
    const firstPaused = new Promise<void>((resolve) => {
      paused = resolve;
    });
    const first = runMaintenance(
      store,
      config,
      systemClock,
      {
        log: async () => {},
        // The first run stops between two statements until the test lets it go on.
        keepAlive: () =>
          pause === undefined
            ? new Promise<void>((resolve) => {
                pause = resolve;
                paused();
              })
            : Promise.resolve(),
      },
      { source: 'workflow:cleanup', owner: 'node-a:101' },
    );
    await firstPaused;
    const rowsBefore = await store.db.selectFrom('db_maintenance').select('id').execute();
    await expect(
      runMaintenance(store, config, systemClock, { log: async () => {}, keepAlive: async () => {} }, { source: 'cli' }),
    ).rejects.toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(
        /^database maintenance is already running \(workflow:cleanup, started .* by node-a:101, now at .*\): nothing was done/,
      ),
    });
    expect(await store.db.selectFrom('db_maintenance').select('id').execute()).toEqual(rowsBefore);
    pause!();
    await expect(first).resolves.toBeDefined();
    // Free again once the first has finished.
    await expect(
      runMaintenance(store, config, systemClock, { log: async () => {}, keepAlive: async () => {} }, { source: 'cli' }),
    ).resolves.toBeDefined();
  });
});
