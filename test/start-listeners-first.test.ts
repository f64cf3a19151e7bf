import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { knownRoles, startRoles } from '../src/roles.ts';
import { capturedLogger } from './support/captured-log.ts';
import { createScratchDatabase } from './support/scratch-database.ts';

// `herald start` (all roles) started the MTA before the inbound, tracking and mid-sourcing servers:
// with the inbound port taken (another herald still running, a local MTA on 2525), the MTA claimed
// and sent mail, with tracking links to a server that never came up, before the start failed and
// stopped it again. The roles that listen on a port now start first, so a taken port stops the start
// before any mail goes out.

describe('herald start with a port taken', () => {
  const scratch = createScratchDatabase('sqlite', 'listenfirst');
  afterAll(async () => (await scratch).drop());

  it('fails before the MTA and the workflow engine start', async () => {
    const occupant = createServer();
    occupant.listen(0, '127.0.0.1');
    await once(occupant, 'listening');
    const { logger, lines } = capturedLogger('info');
    const herald = await openHerald({
      config: parseConfig(
        {
          database: { url: (await scratch).url },
          inbound: { port: (occupant.address() as AddressInfo).port },
          tracking: { port: 0 },
          api: { port: 0 },
        },
        'test',
      ),
      logger,
    });
    try {
      await expect(
        startRoles(
          herald,
          knownRoles().filter((name) => name !== 'mid'),
        ),
      ).rejects.toMatchObject({
        code: 'PORT_IN_USE',
        message: expect.stringContaining('inbound.port'),
      });
      const started = lines.map((line) => JSON.parse(line)).filter((record) => record.msg === 'role started');
      expect(started.map((record) => record.role)).not.toContain('mta');
      expect(started.map((record) => record.role)).not.toContain('workflows');
    } finally {
      await herald.close();
      occupant.close();
    }
  }, 60_000);
});
