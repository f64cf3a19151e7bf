import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import type { Store } from '../src/store/database.ts';
import { postgresUnavailable } from './support/databases.ts';
import { postgresWithOperator } from './support/postgres-operator.ts';
import { waitFor } from './support/wait.ts';

// `herald db maintain` printed each VACUUM (ANALYZE) only once it had ended: during a VACUUM of a big
// table (hours) the last line named the table before, and the operator could not tell which table it
// was on, or whether it hung. With --json it printed nothing at all until the end. Each step is now
// announced as it starts, on stderr with --json (stdout keeps the one JSON object).

describe.skipIf(postgresUnavailable)('herald db maintain progress', () => {
  let database: Awaited<ReturnType<typeof postgresWithOperator>>;
  let store: Store;
  let operator: pg.Client;

  beforeAll(async () => {
    database = await postgresWithOperator('maintprogress');
    ({ store, operator } = database);
  });
  afterAll(async () => {
    await database?.close();
  });

  for (const json of [false, true])
    it(`names the VACUUM it is in while it runs${json ? ' (--json: on stderr)' : ''}`, async () => {
      const stdout: string[] = [];
      const stderr: string[] = [];
      const context = {
        output: { out: (line: string) => void stdout.push(line), err: (line: string) => void stderr.push(line) },
        open: () =>
          openHerald({ config: parseConfig({ database: { url: database.url } }, 'test'), logger: silentLogger }),
      };
      // Holds the maintenance in its VACUUM of delivery_logs, as a long VACUUM of a big table would.
      await operator.query('begin');
      await operator.query('lock table delivery_logs in access exclusive mode');
      let running: Promise<number> | undefined;
      try {
        running = runCli(['node', 'herald', 'db', 'maintain', ...(json ? ['--json'] : [])], context);
        await waitFor(async () => {
          const row = await store.db
            .selectFrom('db_maintenance')
            .select('step')
            .where('state', '=', 'running')
            .orderBy('id', 'desc')
            .executeTakeFirst();
          return row?.step === 'VACUUM (ANALYZE) delivery_logs';
        }, 'the maintenance to reach its VACUUM of delivery_logs');
        expect(json ? stderr : stdout).toContain('VACUUM (ANALYZE) delivery_logs');
      } finally {
        await operator.query('rollback');
      }
      expect(await running).toBe(0);
      if (json)
        expect(stdout.map((line) => JSON.parse(line))).toEqual([expect.objectContaining({ dialect: 'postgres' })]);
      else expect(stdout.at(-1)).toBe('maintenance done');
    }, 60_000);
});
