import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { defaultMidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import type { Store } from '../src/store/database.ts';
import { openMigratedDatabase, type TestDatabase } from './support/databases.ts';

// The execution port answers anyone who reaches it. A stranger sending requests without a valid
// signature, as fast as it can open connections, must not write one warning per request (with
// the whole URL it chose) into this instance's log: the disk it shares with the MTA would fill.

describe('requests refused before their body', () => {
  const clock = manualClock(Date.UTC(2026, 5, 1, 9));
  let execution: { store: Store; database: TestDatabase };
  let server: ExecutionServer;
  const log: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    execution = await openMigratedDatabase('sqlite');
    server = await startExecutionServer({
      store: execution.store,
      config: {
        ...defaultMidsourcingConfig(),
        mode: 'execution',
        peers: [{ name: 'marketing-1', secret: 'rejected-log-shared-secret-0123456789' }],
      },
      clock,
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'warn' }, { write: (line: string) => void log.push(JSON.parse(line)) }),
    });
  });
  afterAll(async () => {
    await server?.close();
    await execution?.store.close();
    await execution?.database.drop();
  });

  const forged = (peer: string) =>
    fetch(`${server.url}/mid/v1/deliveries/1/logs?cursor=0&limit=1&${'x'.repeat(8_000)}`, {
      headers: {
        'x-herald-peer': peer,
        'x-herald-timestamp': String(clock.now()),
        'x-herald-nonce': 'n'.repeat(32),
        'x-herald-head-signature': 'f'.repeat(64),
      },
    });

  it('logs a bounded line at most once a minute per peer entry, with the count of the others', async () => {
    for (let i = 0; i < 40; i++) {
      const answer = await forged(i % 2 === 0 ? 'marketing-1' : `stranger-${i}`);
      expect(answer.status).toBe(401);
      await answer.arrayBuffer();
    }
    // One line for the known name (its hint: compare the secrets), one for the names nobody has.
    expect(log.map((line) => [line.peer, line.code])).toEqual([
      ['marketing-1', 'BAD_SIGNATURE'],
      ['stranger-1', 'BAD_SIGNATURE'],
    ]);
    expect(JSON.stringify(log).length).toBeLessThan(4_000);

    clock.advance(61_000);
    await (await forged('marketing-1')).arrayBuffer();
    expect(log[2]).toMatchObject({
      peer: 'marketing-1',
      code: 'BAD_SIGNATURE',
      alsoRefused: 19,
      hint: expect.stringContaining('the secret of midsourcing.peers "marketing-1" here differs'),
    });
  });
});
