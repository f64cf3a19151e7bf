import { connect, type Socket } from 'node:net';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createAuthLimiter } from '../src/api/auth-limiter.ts';
import { openApiPath } from '../src/api/openapi.ts';
import { routes } from '../src/api/routes.ts';
import { createToken } from '../src/api/tokens.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { createApiClient } from './support/api-client.ts';
import { describeEachDialect } from './support/databases.ts';

// The API over real HTTP on both dialects: an import uploaded and followed, a delivery created,
// prepared, paged through, started, paused, resumed and stopped, the quarantine, workflows, tokens;
// every answer is validated against the OpenAPI document the server serves; bad input gets a clear
// 4xx with nothing applied.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));

describeEachDialect('API over HTTP', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let url: string;
  let document: Record<string, unknown>;
  let client: ReturnType<typeof createApiClient>;
  let viewer: string;
  let operator: string;
  let admin: string;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() }, api: { maxBodyBytes: 4096 } }, 'test'),
      logger: silentLogger,
      clock,
    });
    viewer = (await createToken(herald.store, { role: 'viewer' }, clock.now())).token;
    operator = (await createToken(herald.store, { role: 'operator', name: 'crm' }, clock.now())).token;
    admin = (await createToken(herald.store, { role: 'admin' }, clock.now())).token;
    api = buildApiApp({ herald });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    document = (await (await fetch(`${url}/api/v1/openapi.json`)).json()) as Record<string, unknown>;
    client = createApiClient(url, document);
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  it('serves a valid OpenAPI 3.1 document generated from the routes table', () => {
    expect(document.openapi).toBe('3.1.0');
    const paths = document.paths as Record<
      string,
      Record<
        string,
        {
          operationId: string;
          parameters?: Array<{ name: string; in: string }>;
          responses: Record<string, { content?: Record<string, { schema: object }> }>;
        }
      >
    >;
    const ajv = addFormats.default(new Ajv2020.default({ strict: true, strictTypes: false, allErrors: true }));
    ajv.addSchema(
      (document.components as { schemas: { Problem: object } }).schemas.Problem,
      '#/components/schemas/Problem',
    );
    const operationIds = new Set<string>();
    for (const route of routes) {
      const operation = paths[openApiPath(route.path)]?.[route.method.toLowerCase()];
      expect(operation, route.operationId).toBeDefined();
      expect(operationIds.has(operation!.operationId)).toBe(false);
      operationIds.add(operation!.operationId);
      // Every {param} of the path is declared as a path parameter, and only those.
      const inPath = [...openApiPath(route.path).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      const declared = (operation!.parameters ?? [])
        .filter((p) => p.in === 'path')
        .map((p) => p.name)
        .sort();
      expect(declared, route.path).toEqual(inPath);
      // Every response schema compiles as JSON Schema 2020-12 in strict mode.
      for (const response of Object.values(operation!.responses))
        for (const media of Object.values(response.content ?? {}))
          if (!('$ref' in (media.schema as object))) expect(() => ajv.compile(media.schema)).not.toThrow();
    }
    expect(Object.values(paths).flatMap((p) => Object.keys(p)).length).toBe(routes.length);
  });

  it('answers healthz and readyz', async () => {
    expect((await client.call('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await client.call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready', pendingMigrations: [] });
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('# TYPE herald_deliveries gauge');
  });

  it('imports an uploaded CSV (202, progress, rejects by line), then creates, prepares, pages and drives a delivery', async () => {
    const csv = [
      'email,first_name',
      'ann@a.example,Ann',
      'bob@b.example,Bob',
      'not-an-address,X',
      'cid@a.example,Cid',
      'dan@a.example,Dan',
      '',
    ].join('\n');
    const started = await client.call('POST', '/api/v1/lists/:name/imports', {
      token: operator,
      params: { name: 'newsletter' },
      query: 'file=june.csv',
      raw: csv,
      contentType: 'text/csv',
    });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({ list: 'newsletter', file: 'june.csv' });
    await api.whenIdle();
    const done = await client.call('GET', '/api/v1/imports/:id', {
      token: viewer,
      params: { id: started.body.importId },
    });
    expect(done.body).toMatchObject({ state: 'finished', read: 5, imported: 4, rejected: 1 });
    const rejects = await client.call('GET', '/api/v1/imports/:id/rejects', {
      token: viewer,
      params: { id: started.body.importId },
    });
    expect(rejects.body.items).toEqual([expect.objectContaining({ line: 4, excerpt: 'not-an-address,X' })]);
    const lists = await client.call('GET', '/api/v1/lists', { token: viewer });
    expect(lists.body.lists).toEqual([expect.objectContaining({ name: 'newsletter', recipients: 4 })]);

    const definition = {
      name: 'June news',
      from: 'News <news@brand.example>',
      subject: 'Hi {{ first_name }}',
      html: '<p>Hello</p>',
      list: 'newsletter',
    };
    const checked = await client.call('POST', '/api/v1/deliveries/validate', { token: viewer, body: definition });
    expect(checked.body).toMatchObject({ valid: true, fromAddress: 'news@brand.example', listName: 'newsletter' });
    const created = await client.call('POST', '/api/v1/deliveries', { token: operator, body: definition });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'June news', state: 'edited' });
    const id = created.body.id as number;
    // Before preparation the preview reads the list; after, the delivery log.
    const preview = await client.call('GET', '/api/v1/deliveries/:id/preview', {
      token: viewer,
      params: { id },
      query: 'email=Bob%40b.example',
    });
    expect(preview.body).toMatchObject({ email: 'bob@b.example', subject: 'Hi Bob', html: '<p>Hello</p>', text: null });
    const stranger = await client.call('GET', '/api/v1/deliveries/:id/preview', {
      token: viewer,
      params: { id },
      query: 'email=zed%40b.example',
    });
    expect(stranger.status).toBe(404);

    const prepared = await client.call('POST', '/api/v1/deliveries/:id/prepare', { token: operator, params: { id } });
    expect(prepared.body).toMatchObject({ kind: 'prepared', counts: { prepared: 4 } });
    // The ETA of a prepared delivery, with the MX rule budget that bounds it.
    const withEta = await client.call('GET', '/api/v1/deliveries/:id', { token: viewer, params: { id } });
    expect(withEta.body.eta).toMatchObject({ deliveryId: id, pending: 4, expiring: 0 });
    expect(Date.parse(withEta.body.eta.finishAt)).toBeGreaterThan(clock.now());
    expect(withEta.body.eta.boundBy).toMatchObject({ rule: expect.any(String), messagesPerHour: expect.any(Number) });
    expect(withEta.body.eta.boundBy.messagesPerHour).toBeGreaterThan(0);
    expect(
      withEta.body.eta.groups.map((g: { pending: number }) => g.pending).reduce((a: number, b: number) => a + b),
    ).toBe(4);

    // Keyset pages: two by two, then the filtered view.
    const first = await client.call('GET', '/api/v1/deliveries/:id/logs', {
      token: viewer,
      params: { id },
      query: 'limit=2',
    });
    expect(first.body.items).toHaveLength(2);
    expect(first.body.next).toBe(first.body.items[1].id);
    const second = await client.call('GET', '/api/v1/deliveries/:id/logs', {
      token: viewer,
      params: { id },
      query: `limit=2&after=${first.body.next}`,
    });
    expect(second.body.items).toHaveLength(2);
    expect(second.body.items[0].id).toBeGreaterThan(first.body.next);
    // The last page, exactly full: null, not a key leading to an empty page.
    expect(second.body.next).toBeNull();
    const aDomain = await client.call('GET', '/api/v1/deliveries/:id/logs', {
      token: viewer,
      params: { id },
      query: 'domain=a.example&status=pending',
    });
    expect(aDomain.body.items.map((l: { email: string }) => l.email).sort()).toEqual([
      'ann@a.example',
      'cid@a.example',
      'dan@a.example',
    ]);

    const startedDelivery = await client.call('POST', '/api/v1/deliveries/:id/start', {
      token: operator,
      params: { id },
    });
    expect(startedDelivery.body.state).toBe('in_progress');
    const raised = await client.call('POST', '/api/v1/deliveries/:id/priority', {
      token: operator,
      params: { id },
      body: { priority: 9, weight: 2 },
    });
    expect(raised.body).toMatchObject({ id, priority: 9, weight: 2 });
    const outOfRange = await client.call('POST', '/api/v1/deliveries/:id/priority', {
      token: operator,
      params: { id },
      body: { priority: 10 },
    });
    expect(outOfRange.status).toBe(400);
    expect(
      (await client.call('POST', '/api/v1/deliveries/:id/priority', { token: viewer, params: { id }, body: {} }))
        .status,
    ).toBe(403);
    const again = await client.call('POST', '/api/v1/deliveries/:id/prepare', { token: operator, params: { id } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('INVALID_STATE');
    expect(
      (await client.call('POST', '/api/v1/deliveries/:id/pause', { token: operator, params: { id } })).body,
    ).toMatchObject({ delivery: { state: 'paused' }, forwarding: null });
    expect(
      (await client.call('POST', '/api/v1/deliveries/:id/resume', { token: operator, params: { id } })).body.delivery
        .state,
    ).toBe('in_progress');
    expect(
      (await client.call('POST', '/api/v1/deliveries/:id/stop', { token: operator, params: { id } })).body.delivery
        .state,
    ).toBe('stopped');
    const shown = await client.call('GET', '/api/v1/deliveries/:id', { token: viewer, params: { id } });
    expect(shown.body.summary).toMatchObject({ state: 'stopped', cancelled: 4, excluded: 0 });
    expect(shown.body.eta).toBeNull();
    const list = await client.call('GET', '/api/v1/deliveries', { token: viewer });
    expect(list.body.deliveries.map((d: { id: number }) => d.id)).toContain(id);
    const indicators = await client.call('GET', '/api/v1/deliveries/:id/indicators', { token: viewer, params: { id } });
    expect(indicators.status).toBe(200);
    expect(indicators.body.computedAt).toBeNull();
    const refreshed = await client.call('POST', '/api/v1/deliveries/:id/indicators/refresh', {
      token: operator,
      params: { id },
    });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.computedAt).toBe(clock.now());
    const missing = await client.call('POST', '/api/v1/deliveries/:id/indicators/refresh', {
      token: operator,
      params: { id: 999_999 },
    });
    expect(missing.status).toBe(404);
    const diagnosis = await client.call('GET', '/api/v1/deliveries/:id/doctor', { token: viewer, params: { id } });
    expect(diagnosis.body.checks.length).toBeGreaterThan(0);
  });

  it('searches the quarantine, shows a timeline, releases', async () => {
    const email = { email: 'eve@c.example' };
    expect(
      (
        await client.call('POST', '/api/v1/quarantine/:email/denylist', {
          token: operator,
          params: email,
          body: { note: 'complained by phone' },
        })
      ).body.state,
    ).toBe('denylisted');
    const search = await client.call('GET', '/api/v1/quarantine', { token: viewer, query: 'state=denylisted' });
    expect(search.body.addresses.map((a: { email: string }) => a.email)).toContain('eve@c.example');
    expect(search.body.next).toBeNull();
    // A second denylisted address: pages of one, the cursor of the first leading to the second.
    await client.call('POST', '/api/v1/quarantine/:email/denylist', {
      token: operator,
      params: { email: 'ed@c.example' },
    });
    const first = await client.call('GET', '/api/v1/quarantine', { token: viewer, query: 'state=denylisted&limit=1' });
    expect(first.body.next).toEqual(expect.any(String));
    const second = await client.call('GET', '/api/v1/quarantine', {
      token: viewer,
      query: `state=denylisted&limit=1&after=${encodeURIComponent(first.body.next)}`,
    });
    expect([...first.body.addresses, ...second.body.addresses].map((a: { email: string }) => a.email).sort()).toEqual([
      'ed@c.example',
      'eve@c.example',
    ]);
    expect(second.body.next).toBeNull();
    expect((await client.call('GET', '/api/v1/quarantine', { token: viewer, query: 'after=nonsense' })).status).toBe(
      400,
    );
    const timeline = await client.call('GET', '/api/v1/quarantine/:email', { token: viewer, params: email });
    expect(timeline.body.timeline).toEqual([
      expect.objectContaining({ source: 'operator', stateAfter: 'denylisted', note: 'complained by phone' }),
    ]);
    const dry = await client.call('POST', '/api/v1/quarantine/:email/release', {
      token: operator,
      params: email,
      body: { dryRun: true },
    });
    expect(dry.body).toEqual({ released: 1, dryRun: true, sample: ['eve@c.example'] });
    const released = await client.call('POST', '/api/v1/quarantine/:email/release', { token: operator, params: email });
    expect(released.body, JSON.stringify(released.body)).toMatchObject({ released: 1 });
    expect(
      (await client.call('GET', '/api/v1/quarantine/:email', { token: viewer, params: email })).body.address.state,
    ).toBe('valid');
    const refused = await client.call('POST', '/api/v1/quarantine/suppressions', {
      token: operator,
      body: { addresses: ['ok@d.example', 'broken'] },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([expect.objectContaining({ path: '/body/addresses/1' })]);
    expect(
      (await client.call('GET', '/api/v1/quarantine/:email', { token: viewer, params: { email: 'ok@d.example' } })).body
        .address.state,
    ).toBe('valid');
    const suppressed = await client.call('POST', '/api/v1/quarantine/suppressions', {
      token: operator,
      body: { addresses: ['ok@d.example', 'Two@D.example'], note: 'crm opt-outs' },
    });
    expect(suppressed.body).toMatchObject({ addresses: 2, entered: { denylisted: 2 } });
    const bulk = await client.call('POST', '/api/v1/quarantine/release', {
      token: operator,
      body: { domain: 'c.example', since: '2026-08-01' },
    });
    expect(bulk.body).toMatchObject({ released: 0, dryRun: false });
  });

  it('lists, shows, pauses, resumes and runs workflows, and reads their logs', async () => {
    const listed = await client.call('GET', '/api/v1/workflows', { token: viewer });
    expect(listed.body.workflows.map((w: { name: string }) => w.name)).toContain('delivery-manager');
    expect(
      (await client.call('POST', '/api/v1/workflows/:name/pause', { token: operator, params: { name: 'stats' } })).body,
    ).toMatchObject({ name: 'stats', changed: true, state: 'paused' });
    expect(
      (await client.call('POST', '/api/v1/workflows/:name/resume', { token: operator, params: { name: 'stats' } })).body
        .changed,
    ).toBe(true);
    const run = await client.call('POST', '/api/v1/workflows/:name/run', {
      token: operator,
      params: { name: 'delivery-manager' },
    });
    expect(run.body).toMatchObject({ workflow: 'delivery-manager', status: 'succeeded' });
    const shown = await client.call('GET', '/api/v1/workflows/:name', {
      token: viewer,
      params: { name: 'delivery-manager' },
    });
    expect(shown.body.runs[0].id).toBe(run.body.runId);
    const logs = await client.call('GET', '/api/v1/workflows/:name/logs', {
      token: viewer,
      params: { name: 'delivery-manager' },
    });
    expect(logs.body.logs.every((l: { runId: number }) => l.runId === run.body.runId)).toBe(true);
    const unknown = await client.call('POST', '/api/v1/workflows/:name/run', {
      token: operator,
      params: { name: 'nope' },
    });
    expect(unknown.status).toBe(404);

    // Restart from a chosen step (index or name), whatever the last run's outcome.
    const steps = shown.body.steps as Array<{ index: number; name: string }>;
    const restarted = await client.call('POST', '/api/v1/workflows/:name/restart', {
      token: operator,
      params: { name: 'delivery-manager' },
      body: { fromStep: steps[steps.length - 1]!.name },
    });
    expect(restarted.body).toMatchObject({ workflow: 'delivery-manager', status: 'succeeded' });
    const runs = await client.call('GET', '/api/v1/workflows/:name', {
      token: viewer,
      params: { name: 'delivery-manager' },
    });
    expect(runs.body.runs[0]).toMatchObject({
      id: restarted.body.runId,
      trigger: 'restart',
      startStep: steps.length - 1,
    });
    const badStep = await client.call('POST', '/api/v1/workflows/:name/restart', {
      token: operator,
      params: { name: 'delivery-manager' },
      body: { fromStep: 99 },
    });
    expect(badStep.status).toBe(400);
    expect(badStep.body).toMatchObject({ code: 'INPUT_INVALID', detail: expect.stringContaining('fromStep') });
    const wrongType = await client.call('POST', '/api/v1/workflows/:name/restart', {
      token: operator,
      params: { name: 'delivery-manager' },
      body: { fromStep: true },
    });
    expect(wrongType.status).toBe(400);
    const after = await client.call('GET', '/api/v1/workflows/:name', {
      token: viewer,
      params: { name: 'delivery-manager' },
    });
    expect(after.body.runs[0].id).toBe(restarted.body.runId);
  });

  it('reads the doctor, MX rules, rule versions, database and mid-sourcing status', async () => {
    expect((await client.call('GET', '/api/v1/doctor', { token: viewer })).body.checks.length).toBeGreaterThan(0);
    const match = await client.call('GET', '/api/v1/mx/match', {
      token: viewer,
      query: 'host=gmail-smtp-in.l.google.com',
    });
    expect(match.body.rule).toBeTruthy();
    expect((await client.call('GET', '/api/v1/mx/stats', { token: viewer })).status).toBe(200);
    expect((await client.call('GET', '/api/v1/rules/versions', { token: viewer })).body).toEqual({ versions: [] });
    const rollback = await client.call('POST', '/api/v1/rules/rollback', { token: admin, body: { kind: 'mx' } });
    expect(rollback.status).toBe(409);
    expect((await client.call('GET', '/api/v1/database', { token: viewer })).body.dialect).toBe(context.dialect);
    expect((await client.call('GET', '/api/v1/mid/status', { token: viewer })).body).toEqual({ deliveries: [] });
    expect((await client.call('GET', '/api/v1/qualification', { token: viewer, query: 'status=all' })).body).toEqual({
      entries: [],
    });
    expect(
      (await client.call('POST', '/api/v1/qualification/:id/ignore', { token: operator, params: { id: 12 } })).status,
    ).toBe(404);
    const site = [
      'rules:',
      '  - name: corp',
      '    mask: ["*.corp.test"]',
      '    maxConnections: 2',
      '    maxMessagesPerHour: 100',
      '    maxMessagesPerConnection: 10',
      '',
    ].join('\n');
    const good = await client.call('POST', '/api/v1/rules/check', {
      token: viewer,
      body: { files: [{ name: 'site.yaml', content: site }] },
    });
    expect(good.body, JSON.stringify(good.body)).toMatchObject({
      ok: true,
      files: [{ file: 'site.yaml', ok: true, rules: 1 }],
    });
    const broken = await client.call('POST', '/api/v1/rules/check', {
      token: viewer,
      body: { files: [{ name: 'site.yaml', content: 'rules:\n  - name: corp\n    maxConnections: -1\n' }] },
    });
    expect(broken.body.ok).toBe(false);
    expect(broken.body.files[0].issues[0]).toMatchObject({ file: 'site.yaml' });
  });

  it('manages tokens (admin): created once, listed without secret, revoked at once', async () => {
    const created = await client.call('POST', '/api/v1/tokens', {
      token: admin,
      body: { role: 'viewer', name: 'grafana' },
    });
    expect(created.status).toBe(201);
    expect((await client.call('GET', '/api/v1/deliveries', { token: created.body.token })).status).toBe(200);
    const listed = await client.call('GET', '/api/v1/tokens', { token: admin });
    expect(JSON.stringify(listed.body)).not.toContain(created.body.token);
    expect(
      listed.body.tokens.find((t: { tokenId: string }) => t.tokenId === created.body.tokenId).lastUsedAt,
    ).not.toBeNull();
    await client.call('DELETE', '/api/v1/tokens/:tokenId', { token: admin, params: { tokenId: created.body.tokenId } });
    const refused = await client.call('GET', '/api/v1/deliveries', { token: created.body.token });
    expect(refused.status).toBe(401);
    const audit = await client.call('GET', '/api/v1/audit', { token: admin, query: 'limit=5' });
    expect(audit.body.items[0]).toMatchObject({ route: 'revokeToken', status: 200, role: 'admin', method: 'DELETE' });
  });

  it('refuses bad input with a clear 4xx problem and applies nothing', async () => {
    const before = (await client.call('GET', '/api/v1/deliveries', { token: viewer })).body.deliveries.length;
    const definition = { name: 'x', from: 'news@brand.example', subject: 's', html: '<p>x</p>' };
    const malformed = await client.call('POST', '/api/v1/deliveries', { token: operator, raw: '{"name": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ code: 'INPUT_INVALID', status: 400, instance: '/api/v1/deliveries' });
    expect(malformed.headers.get('content-type')).toContain('application/problem+json');
    const unknownField = await client.call('POST', '/api/v1/deliveries', {
      token: operator,
      body: { ...definition, htmlFile: '/etc/passwd' },
    });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.errors).toContainEqual({ path: '/body/htmlFile', message: 'unknown field' });
    const wrongType = await client.call('POST', '/api/v1/deliveries', {
      token: operator,
      body: { ...definition, validityHours: '12' },
    });
    expect(wrongType.body.errors).toContainEqual(expect.objectContaining({ path: '/body/validityHours' }));
    const instantExpiry = await client.call('POST', '/api/v1/deliveries', {
      token: operator,
      body: { ...definition, validityHours: 1e-9 },
    });
    expect(instantExpiry.status).toBe(400);
    expect(instantExpiry.body.errors).toContainEqual(expect.objectContaining({ path: '/body/validityHours' }));
    const missing = await client.call('POST', '/api/v1/deliveries', { token: operator, body: { name: 'x' } });
    expect(missing.body.errors).toContainEqual({ path: '/body/from', message: 'is required' });
    const badTemplate = await client.call('POST', '/api/v1/deliveries', {
      token: operator,
      body: { ...definition, subject: 'Hi {{ name' },
    });
    expect(badTemplate.status).toBe(400);
    expect(badTemplate.body.code).toBe('TEMPLATE_SYNTAX');
    const tooLarge = await client.call('POST', '/api/v1/deliveries', {
      token: operator,
      body: { ...definition, html: 'x'.repeat(5000) },
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.code).toBe('INPUT_TOO_LARGE');
    const traversal = await fetch(`${url}/api/v1/deliveries/..%2F..%2Fetc%2Fpasswd`, {
      headers: { authorization: `Bearer ${viewer}` },
    });
    expect(traversal.status).toBe(400);
    expect(((await traversal.json()) as { errors: Array<{ path: string }> }).errors[0]!.path).toBe('/params/id');
    const badEmail = await client.call('GET', '/api/v1/quarantine/:email', {
      token: viewer,
      params: { email: '../../x' },
    });
    expect(badEmail.status).toBe(400);
    const badQuery = await client.call('GET', '/api/v1/deliveries/:id/logs', {
      token: viewer,
      params: { id: 1 },
      query: 'status=lost&sort=email',
    });
    expect(badQuery.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['/query/sort', '/query/status']);
    // A route without query parameters refuses any: a misspelt filter is not silently a full list.
    const undeclared = await client.call('GET', '/api/v1/deliveries', { token: viewer, query: 'stauts=failed' });
    expect(undeclared.status).toBe(400);
    expect(undeclared.body.errors).toContainEqual({ path: '/query/stauts', message: 'unknown field' });
    // An upload named ".." would have been written to the upload folder's parent (500).
    for (const file of ['..', '.']) {
      const named = await client.call('POST', '/api/v1/lists/:name/imports', {
        token: operator,
        params: { name: 'dot-upload' },
        query: `file=${file}`,
        raw: 'email\nann@example.test\n',
        contentType: 'text/csv',
      });
      expect(named.status).toBe(400);
      expect(named.body.errors.map((e: { path: string }) => e.path)).toEqual(['/query/file']);
    }
    const bodyOnBodyless = await client.call('POST', '/api/v1/deliveries/:id/pause', {
      token: operator,
      params: { id: 1 },
      body: { force: true },
    });
    expect(bodyOnBodyless.status).toBe(400);
    const csvAsJson = await client.call('POST', '/api/v1/lists/:name/imports', {
      token: operator,
      params: { name: 'x' },
      body: { email: 'a@b.c' },
    });
    expect(csvAsJson.status).toBe(415);
    const noHeader = await client.call('POST', '/api/v1/lists/:name/imports', {
      token: operator,
      params: { name: 'bad-upload' },
      raw: 'name\nann\n',
      contentType: 'text/csv',
    });
    expect(noHeader.body.code).toBe('CSV_NO_EMAIL_COLUMN');
    expect(
      (await client.call('GET', '/api/v1/lists', { token: viewer })).body.lists.map((l: { name: string }) => l.name),
    ).not.toContain('bad-upload');
    expect(
      (await client.call('GET', '/api/v1/lists', { token: viewer })).body.lists.map((l: { name: string }) => l.name),
    ).not.toContain('dot-upload');
    expect((await client.call('GET', '/api/v1/deliveries', { token: viewer })).body.deliveries.length).toBe(before);

    // Webhook subscriptions: an unknown event kind, a wrong type, malformed JSON — none is created.
    const hooksBefore = (await client.call('GET', '/api/v1/webhooks', { token: admin })).body.webhooks.length;
    const unknownKind = await client.call('POST', '/api/v1/webhooks', {
      token: admin,
      body: { url: 'http://127.0.0.1:9/hook', events: ['message.read'] },
    });
    expect(unknownKind.status).toBe(400);
    expect(unknownKind.body.errors.map((e: { path: string }) => e.path)).toContain('/body/events/0');
    const kindsAsString = await client.call('POST', '/api/v1/webhooks', {
      token: admin,
      body: { url: 'http://127.0.0.1:9/hook', events: 'message.sent' },
    });
    expect(kindsAsString.status).toBe(400);
    // The cloud metadata service: refused by webhooks.deniedNetworks, said so at creation.
    const metadata = await client.call('POST', '/api/v1/webhooks', {
      token: admin,
      body: { url: 'http://169.254.169.254/latest/meta-data/', events: ['message.sent'] },
    });
    expect(metadata.status).toBe(400);
    expect(metadata.body).toMatchObject({
      code: 'INPUT_INVALID',
      detail: expect.stringContaining('169.254.169.254 is in webhooks.deniedNetworks (169.254.0.0/16)'),
    });
    // A rule source named in the request: never a directory of the server, never a denied network.
    const directory = await client.call('POST', '/api/v1/rules/update', { token: admin, body: { source: '/etc' } });
    expect(directory.status).toBe(400);
    expect(directory.body).toMatchObject({ code: 'INPUT_INVALID', detail: expect.stringContaining('source: "/etc"') });
    const loopback = await client.call('POST', '/api/v1/rules/update', {
      token: admin,
      body: { source: 'http://127.0.0.1:9/manifest.json' },
    });
    expect(loopback.body).toMatchObject({
      code: 'RULES_SOURCE_UNAVAILABLE',
      detail: expect.stringContaining('destination refused: 127.0.0.1 is in webhooks.deniedNetworks'),
    });
    // A secret rotated: the new one in this answer only; an operator token may not rotate.
    const hook = await client.call('POST', '/api/v1/webhooks', {
      token: admin,
      body: { url: 'https://crm.example/hook', events: ['message.sent'] },
    });
    const rotate = (token: string, body: Record<string, unknown>) =>
      client.call('POST', '/api/v1/webhooks/:id/rotate-secret', { token, params: { id: hook.body.id }, body });
    expect((await rotate(operator, {})).status).toBe(403);
    expect((await rotate(admin, { overlapHours: 721 })).status).toBe(400);
    const rotated = await rotate(admin, { overlapHours: 2 });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(hook.body.secret);
    expect(rotated.body.previousSecretUntil).toEqual(expect.any(String));
    const listed = await client.call('GET', '/api/v1/webhooks', { token: admin });
    expect(JSON.stringify(listed.body)).not.toContain(rotated.body.secret);
    await client.call('DELETE', '/api/v1/webhooks/:id', { token: admin, params: { id: hook.body.id } });
    const brokenJson = await client.call('POST', '/api/v1/webhooks', { token: admin, raw: '{"url": "http://x/' });
    expect(brokenJson.status).toBe(400);
    expect((await client.call('GET', '/api/v1/webhooks', { token: admin })).body.webhooks).toHaveLength(hooksBefore);
  });

  it('refuses page keys past the largest safe integer with 400, not a database error', async () => {
    const deliveries = (await client.call('GET', '/api/v1/deliveries', { token: viewer })).body.deliveries as Array<{
      id: number;
    }>;
    const huge = '99999999999999999999999';
    // Before: 500 INTERNAL on PostgreSQL (invalid input syntax for type bigint: "1e+23"), the stack logged.
    for (const [path, token] of [
      [`/api/v1/deliveries/${deliveries[0]!.id}/logs?after=${huge}`, viewer],
      [`/api/v1/audit?before=${huge}`, admin],
      [`/api/v1/workflows/cleanup/logs?run=${huge}`, viewer],
    ] as const) {
      const answer = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect(answer.status, path).toBe(400);
      expect(((await answer.json()) as { code: string }).code).toBe('INPUT_INVALID');
    }
  });

  it('refuses a NUL character in a path, query or body with 400, not a database error', async () => {
    const deliveries = (await client.call('GET', '/api/v1/deliveries', { token: viewer })).body.deliveries as Array<{
      id: number;
    }>;
    // Before: 500 INTERNAL on PostgreSQL (invalid byte sequence for encoding "UTF8": 0x00), the stack logged.
    for (const path of [
      '/api/v1/quarantine/a%00b%40example.com',
      '/api/v1/quarantine?domain=a%00b',
      `/api/v1/deliveries/${deliveries[0]!.id}/logs?email=a%00b`,
    ]) {
      const answer = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${viewer}` } });
      expect(answer.status, path).toBe(400);
      expect(((await answer.json()) as { code: string }).code).toBe('INPUT_INVALID');
    }
    const named = await fetch(`${url}/api/v1/deliveries`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'nul\u0000name', from: 'news@brand.example', subject: 's', html: '<p>x</p>' }),
    });
    expect(named.status).toBe(400);
    expect(((await named.json()) as { detail: string }).detail).toContain('NUL');
  });

  it('closes a connection whose body is not in within api.bodyTimeoutMs, but lets an authorized CSV upload take longer', async () => {
    const quick = buildApiApp({
      herald: { ...herald, config: { ...herald.config, api: { ...herald.config.api, bodyTimeoutMs: 1_000 } } },
    });
    const quickUrl = new URL(await quick.app.listen({ host: '127.0.0.1', port: 0 }));
    // Sends the head and the start of a body, then nothing more: what a client dripping a body looks like.
    const sockets: Socket[] = [];
    const open = (head: string, start: string) => {
      const socket = connect(Number(quickUrl.port), '127.0.0.1');
      sockets.push(socket);
      let answer = '';
      socket.on('data', (chunk) => {
        answer += String(chunk);
      });
      const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(answer)));
      const answered = new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(String(chunk))));
      socket.write(`${head}\r\nHost: ${quickUrl.host}\r\n\r\n${start}`);
      return { socket, closed, answered };
    };
    try {
      const upload = open(
        `POST /api/v1/lists/slow/imports HTTP/1.1\r\nAuthorization: Bearer ${operator}\r\nContent-Type: text/csv\r\nContent-Length: 24`,
        'email\n',
      );
      // Public (the sign-in form) and refused (401, whose body Node still reads to its end): both cut off.
      const signIn = open(
        'POST /ui/sign-in HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000',
        'a',
      );
      const refused = open(
        'POST /api/v1/deliveries HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 60000',
        '{',
      );
      expect(await signIn.closed).toBe('');
      expect(await refused.closed).toMatch(/^HTTP\/1\.1 401/);
      // Both deadlines above were armed after the upload's: it is still open, and finishes.
      expect(upload.socket.destroyed).toBe(false);
      upload.socket.write('slow@example.test\n');
      expect(await upload.answered).toMatch(/^HTTP\/1\.1 202/);
      upload.socket.destroy();
      await upload.closed;
      await quick.whenIdle();
    } finally {
      for (const socket of sockets) socket.destroy();
      await quick.app.close();
    }
  });

  it('counts state-changing calls without a token against the limiter apart from wrong tokens, and stops auditing a blocked client', async () => {
    const limited = buildApiApp({ herald, limiter: createAuthLimiter({ failuresPerWindow: 3, windowMs: 60_000 }) });
    const limitedUrl = await limited.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const path = '/api/v1/deliveries/424242/stop';
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await fetch(`${limitedUrl}${path}`, { method: 'POST' })).status);
      // Before: six 401 and six audit rows, a row per request at network speed (2,000/s), never purged.
      expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
      const audited = await herald.store.db.selectFrom('api_audit').select('status').where('path', '=', path).execute();
      expect(audited.map((row) => row.status)).toEqual([401, 401, 401]);
      // Any web page can send those to 127.0.0.1: they block no request carrying a token. Before: a
      // valid token got 429 for the rest of the window, every loopback client with it.
      const withToken = await fetch(`${limitedUrl}/api/v1/deliveries`, {
        headers: { authorization: `Bearer ${viewer}` },
      });
      expect(withToken.status).toBe(200);
      // Wrong tokens still have their own count, and block.
      const guess = () =>
        fetch(`${limitedUrl}/api/v1/deliveries`, {
          headers: { authorization: `Bearer herald_AAAAAAAAAAAA_${'x'.repeat(43)}` },
        });
      expect([(await guess()).status, (await guess()).status, (await guess()).status, (await guess()).status]).toEqual([
        401, 401, 401, 429,
      ]);
      clock.advance(60_000);
    } finally {
      await limited.app.close();
    }
  });

  it('rate-limits token guessing per address (429 with Retry-After, even for a good token until the window ends)', async () => {
    const limited = buildApiApp({ herald, limiter: createAuthLimiter({ failuresPerWindow: 3, windowMs: 60_000 }) });
    const limitedUrl = await limited.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const guess = (token: string) =>
        fetch(`${limitedUrl}/api/v1/deliveries`, { headers: { authorization: `Bearer ${token}` } });
      for (let i = 0; i < 3; i++) expect((await guess(`herald_AAAAAAAAAAA${i}_${'x'.repeat(43)}`)).status).toBe(401);
      const blocked = await guess(viewer);
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await blocked.json()) as { code: string }).code).toBe('RATE_LIMITED');
      clock.advance(60_000);
      expect((await guess(viewer)).status).toBe(200);
    } finally {
      await limited.app.close();
    }
  });
});
