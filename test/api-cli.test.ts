import { expect, it } from 'vitest';
import { startApiServer } from '../src/api/server.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { parseRoles, startRoles, stopRoles } from '../src/roles.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';

// `herald tokens create|list|revoke` and the `api` role's server: a token created on the command line
// works over HTTP until it is revoked.

describeEachDialect('herald tokens and the api role', (context) => {
  it('creates a token shown once, lists it without its secret, revokes it; the role serves it meanwhile', async () => {
    const created = await runHerald(context.url(), [
      'tokens',
      'create',
      '--role',
      'operator',
      '--name',
      'crm',
      '--json',
    ]);
    expect(created.exitCode).toBe(0);
    const [token] = created.json<{ token: string; tokenId: string; role: string; name: string }>();
    expect(token).toMatchObject({ role: 'operator', name: 'crm' });
    expect(token!.token).toMatch(/^herald_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/);

    const listed = await runHerald(context.url(), ['tokens', 'list', '--json']);
    expect(listed.stdout.join('\n')).not.toContain(token!.token);
    expect(listed.json<{ tokens: Array<{ tokenId: string; revokedAt: string | null }> }>()[0]!.tokens).toEqual([
      expect.objectContaining({ tokenId: token!.tokenId, revokedAt: null }),
    ]);

    const herald = await openHerald({
      config: parseConfig({ database: { url: context.url() }, api: { port: 0 } }, 'test'),
      logger: silentLogger,
      clock: manualClock(Date.now()),
    });
    const server = await startApiServer(herald);
    try {
      const get = () =>
        fetch(`${server.url}/api/v1/deliveries`, { headers: { authorization: `Bearer ${token!.token}` } });
      expect((await get()).status).toBe(200);
      const revoked = await runHerald(context.url(), ['tokens', 'revoke', token!.tokenId]);
      expect(revoked.stdout).toEqual([`token ${token!.tokenId} revoked`]);
      expect((await get()).status).toBe(401);
    } finally {
      await server.close();
    }

    // The role itself starts and stops like any other; a taken port is named.
    expect(parseRoles('api')).toEqual(['api']);
    const roles = await startRoles(herald, ['api']);
    await stopRoles(herald, roles);
    const taken = Number(new URL(server.url).port);
    const occupant = await startApiServer(herald, taken);
    try {
      const busy = { ...herald, config: { ...herald.config, api: { ...herald.config.api, port: taken } } };
      await expect(startRoles(busy, ['api'])).rejects.toMatchObject({
        code: 'PORT_IN_USE',
        message: expect.stringContaining('api.port'),
      });
    } finally {
      await occupant.close();
    }
    await herald.close();

    const bad = await runHerald(context.url(), ['tokens', 'create', '--role', 'root']);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr.join('\n')).toContain('INPUT_INVALID: role must be one of viewer, operator, admin');
    const unknown = await runHerald(context.url(), ['tokens', 'revoke', 'AAAAAAAAAAAA']);
    expect(unknown.stderr.join('\n')).toContain('NOT_FOUND');
  });
});
