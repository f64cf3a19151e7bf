import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createAuthLimiter } from '../src/api/auth-limiter.ts';
import { listAudit } from '../src/api/api-store.ts';
import { routes } from '../src/api/routes.ts';
import { createToken, roleAllows } from '../src/api/tokens.ts';
import { changesState } from '../src/api/route.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import type { ApiRole } from '../src/store/tables.ts';
import { createApiClient } from './support/api-client.ts';
import { describeEachDialect } from './support/databases.ts';

// Walks the WHOLE routes table with no token and with each role, over real HTTP, and checks every
// allow/deny: no token → 401 (public routes excepted), a role below the route's → 403, otherwise
// neither. Requests name things that do not exist and send no body, so an allowed call is refused by
// validation or lookup (400/404/409) or is a harmless read. Every state-changing call is audited.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));
const samples = { id: 999_999, name: 'nope', email: 'walk@example.test', tokenId: 'AAAAAAAAAAAA' };

describeEachDialect('API roles', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let client: ReturnType<typeof createApiClient>;
  const tokens = {} as Record<ApiRole, string>;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock,
    });
    for (const role of ['viewer', 'operator', 'admin'] as const)
      tokens[role] = (await createToken(herald.store, { role, name: `walk ${role}` }, clock.now())).token;
    // The walk makes ~30 state-changing calls without a token, each a failed authentication: a limit
    // above that keeps the address unblocked (api-http.test.ts covers the limiter).
    api = buildApiApp({ herald, limiter: createAuthLimiter({ failuresPerWindow: 1_000, windowMs: 60_000 }) });
    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    const document = (await (await fetch(`${url}/api/v1/openapi.json`)).json()) as Record<string, unknown>;
    client = createApiClient(url, document);
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  it('allows and denies every route of the table for every role', async () => {
    let stateChangingCalls = 0;
    const seen: string[] = [];
    for (const route of routes) {
      for (const role of [undefined, 'viewer', 'operator', 'admin'] as const) {
        const answer = await client.call(route.method, route.path, {
          params: samples,
          ...(role && { token: tokens[role] }),
          ...(route.body === 'csv' && { raw: 'email\n', contentType: 'text/csv' }),
          ...(route.path.endsWith('/mx/match') && { query: 'host=mx.example.test' }),
        });
        if (changesState(route)) stateChangingCalls += 1;
        const label = `${route.method} ${route.path} as ${role ?? 'anonymous'} → ${answer.status} ${answer.body?.code ?? ''}`;
        seen.push(label);
        if (route.permission === 'public') expect([401, 403], label).not.toContain(answer.status);
        else if (role === undefined) {
          expect(answer.status, label).toBe(401);
          expect(answer.body.code, label).toBe('AUTH_REQUIRED');
          expect(answer.headers.get('www-authenticate'), label).toContain('Bearer');
        } else if (!roleAllows(role, route.permission)) {
          expect(answer.status, label).toBe(403);
          expect(answer.body.code, label).toBe('FORBIDDEN');
        } else {
          expect([401, 403, 500], label).not.toContain(answer.status);
        }
      }
    }
    // Sanity of the table itself: viewers never change state; every route has a distinct operation.
    for (const route of routes) if (changesState(route)) expect(route.permission, route.path).not.toBe('viewer');
    expect(new Set(routes.map((r) => r.operationId)).size).toBe(routes.length);
    expect(seen.length).toBe(routes.length * 4);

    const audit = await listAudit(herald.store, { limit: 10_000 });
    expect(audit.length).toBe(stateChangingCalls);
    const denied = audit.find((row) => row.status === 403)!;
    expect(denied.token_id).not.toBeNull();
    expect(denied.error_code).toBe('FORBIDDEN');
    expect(audit.some((row) => row.status === 401 && row.token_id === null && row.error_code === 'AUTH_REQUIRED')).toBe(
      true,
    );
  });
});
