import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createAuthLimiter } from '../src/api/auth-limiter.ts';
import { createToken, revokeToken } from '../src/api/tokens.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { insertTrackingEvents } from '../src/tracking/tracking-store.ts';
import { createLiveTicks, type LiveTicks } from '../src/web/live-ticks.ts';
import { createSignInCode } from '../src/web/sessions.ts';
import { describeEachDialect } from './support/databases.ts';
import { preparedDelivery } from './support/fixtures.ts';
import { waitFor } from './support/wait.ts';
import { createWebClient, csrfOf } from './support/web-client.ts';

// The dashboard over real HTTP on both dialects: sign-in and sessions, the deliveries list and the
// delivery page, a confirmed pause and resume, roles, CSRF and origin checks, audit, inert script in
// stored values, and the static assets' cache headers.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));
const script = '<script>alert(1)</script>';

describeEachDialect('dashboard over HTTP', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let url: string;
  let viewer: string;
  let operator: string;
  let deliveryId: number;
  let ticks: LiveTicks;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() }, api: { sessionHours: 1 } }, 'test'),
      logger: silentLogger,
      clock,
    });
    viewer = (await createToken(herald.store, { role: 'viewer', name: `viewer ${script}` }, clock.now())).token;
    operator = (await createToken(herald.store, { role: 'operator', name: 'ops' }, clock.now())).token;
    deliveryId = await preparedDelivery(herald, 'web', 5, {
      name: `Spring ${script}`,
      from: 'news@example.com',
      subject: '<img src=x onerror=alert(2)>',
      text: 'Hello',
    });
    // A stored SMTP reply with markup, as a hostile MX host could send it.
    await context
      .store()
      .db.updateTable('delivery_logs')
      .set({
        status: 'failed',
        last_reply_code: 550,
        last_reply_text: `5.1.1 ${script}`,
        failure_reason: 'user_unknown',
        failure_type: 'hard',
        failure_category: 'userunknown',
        mx_host: 'mx.example.test',
      })
      .where('email', '=', 'r0@example.test')
      .execute();
    ticks = createLiveTicks({ herald });
    api = buildApiApp({ herald, liveTicks: ticks });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  it('signs in with a token into an HttpOnly, SameSite=Strict session cookie and signs out', async () => {
    const web = createWebClient(url);
    const signInPage = await web.get('/ui/sign-in');
    expect(signInPage.status).toBe(200);
    expect(signInPage.text).toContain('<label for="token">API token</label>');
    const answer = await web.post('/ui/sign-in', { _csrf: csrfOf(signInPage.text), token: operator });
    expect(answer.status).toBe(303);
    const cookie = answer.headers.getSetCookie().find((line) => line.startsWith('herald_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).not.toMatch(/Secure/i); // plain HTTP here; Secure when the request came over TLS
    const list = await web.get('/ui/deliveries');
    expect(list.status).toBe(200);
    expect(list.text).toContain(`/ui/deliveries/${deliveryId}`);
    const out = await web.post('/ui/sign-out', { _csrf: csrfOf(list.text) });
    expect(out.status).toBe(303);
    const after = await web.get('/ui/deliveries');
    expect(after.status).toBe(401);
    expect(after.text).toContain('Not signed in');
  });

  /** `count` browsers, each signed in with the viewer token. */
  const signedInViewers = (count: number) =>
    Promise.all(
      Array.from({ length: count }, async () => {
        const web = createWebClient(url);
        await web.signIn(viewer);
        return web;
      }),
    );

  it('sends the addresses an operator types (/, /ui, /ui/) to the deliveries', async () => {
    for (const path of ['/', '/ui', '/ui/']) {
      const answer = await fetch(`${url}${path}`, { redirect: 'manual' });
      expect([path, answer.status, answer.headers.get('location')]).toEqual([path, 302, '/ui/deliveries']);
    }
  });

  it('serves N browsers polling one delivery from one load per tick', async () => {
    const viewers = await signedInViewers(12);
    clock.advance(10_000); // past any tick an earlier test loaded
    const before = ticks.tick.loads();
    const answers = await Promise.all(viewers.map((web) => web.get(`/ui/deliveries/${deliveryId}/live`)));
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.text).toContain('id="delivery-live"');
    }
    expect(ticks.tick.loads() - before).toBe(1);
    clock.advance(2_000);
    await Promise.all(viewers.map((web) => web.get(`/ui/deliveries/${deliveryId}/live`)));
    expect(ticks.tick.loads() - before).toBe(2);
  });

  it('runs the doctor once for every viewer of /ui/doctor and every caller of the API doctor routes', async () => {
    // Each run is a pass over the logs: 3 viewers reloading /ui/doctor on 300,000 logs took /healthz of
    // the same process from 2 ms to 1,247 ms (p50), a run per request.
    const viewers = await signedInViewers(8);
    clock.advance(60_000); // past any run an earlier test loaded
    const before = ticks.doctor.loads();
    const api = (path: string) => fetch(`${url}${path}`, { headers: { authorization: `Bearer ${viewer}` } });
    const [pages, platform, delivery] = await Promise.all([
      Promise.all(viewers.map((web) => web.get('/ui/doctor'))),
      Promise.all([api('/api/v1/doctor'), api('/api/v1/doctor')]),
      Promise.all([api(`/api/v1/deliveries/${deliveryId}/doctor`), api(`/api/v1/deliveries/${deliveryId}/doctor`)]),
    ]);
    for (const page of pages) expect(page.status).toBe(200);
    for (const answer of [...platform, ...delivery]) expect(answer.status).toBe(200);
    expect(ticks.doctor.loads() - before).toBe(2);
    clock.advance(15_000);
    await Promise.all(viewers.map((web) => web.get('/ui/doctor')));
    expect(ticks.doctor.loads() - before).toBe(3);
  });

  it('reads the database status once for every viewer of /ui/database and every caller of GET /api/v1/database', async () => {
    // On SQLite it reads every page (dbstat) and counts every table: 3 viewers reloading /ui/database
    // on 300,000 logs took /healthz of the same process from 2 ms to 592 ms (p50), a read per request.
    const viewers = await signedInViewers(4);
    clock.advance(60_000);
    const before = ticks.database.loads();
    const [pages, calls] = await Promise.all([
      Promise.all(viewers.map((web) => web.get('/ui/database'))),
      Promise.all(
        [0, 1].map(() => fetch(`${url}/api/v1/database`, { headers: { authorization: `Bearer ${viewer}` } })),
      ),
    ]);
    for (const answer of [...pages, ...calls]) expect(answer.status).toBe(200);
    expect(ticks.database.loads() - before).toBe(1);
  });

  it('estimates a delivery once for every caller of GET /api/v1/deliveries/{id}', async () => {
    // The ETA groups the pending logs by domain: 3 clients polling a delivery of 300,000 pending logs
    // took /healthz of the same process from 3 ms to 83 ms (p50), a scan per answer.
    clock.advance(60_000);
    const before = ticks.shownEta.loads();
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        fetch(`${url}/api/v1/deliveries/${deliveryId}`, { headers: { authorization: `Bearer ${viewer}` } }),
      ),
    );
    for (const answer of answers) expect(((await answer.json()) as { eta: unknown }).eta).not.toBeNull();
    expect(ticks.shownEta.loads() - before).toBe(1);
    // An action through the API makes the next answer estimate afresh.
    const share = await fetch(`${url}/api/v1/deliveries/${deliveryId}/priority`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({ priority: 5, weight: 1 }),
    });
    expect(share.status).toBe(200);
    await fetch(`${url}/api/v1/deliveries/${deliveryId}`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(ticks.shownEta.loads() - before).toBe(2);
  });

  it('renders the delivery page without waiting for the ETA and the doctor, which fill in behind it', async () => {
    // A fresh app: nothing estimated or examined yet for this delivery.
    const fresh = buildApiApp({ herald, liveTicks: createLiveTicks({ herald }) });
    const freshUrl = await fresh.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const web = createWebClient(freshUrl);
      await web.signIn(viewer);
      const first = await web.get(`/ui/deliveries/${deliveryId}`);
      expect(first.status).toBe(200);
      const serverMs = Number(/^app;dur=(\d+\.\d)$/.exec(first.headers.get('server-timing') ?? '')?.[1]);
      expect(serverMs).toBeGreaterThan(0);
      expect(first.text).toContain('Estimating (the page updates when it is ready)');
      expect(first.text).toContain('The doctor is examining this delivery');
      // The doctor region asks at once (load) and waits for the examination the page started.
      expect(first.text).toContain('hx-trigger="load, every 15s"');
      const region = await web.get(`/ui/deliveries/${deliveryId}/doctor`);
      expect(region.status).toBe(200);
      expect(region.text).not.toContain('is examining');
      expect(region.text).toContain('hx-trigger="every 15s"');
      await waitFor(async () => {
        const live = await web.get(`/ui/deliveries/${deliveryId}/live`);
        return live.text.includes('Estimated at');
      }, 'the live region showing the ETA once estimated');
    } finally {
      await fresh.app.close();
    }
  });

  it('signs in with a one-time code once, before it expires, as the token it was made for', async () => {
    const made = await createToken(herald.store, { role: 'viewer', name: 'visitor by code' }, clock.now());
    const { code } = await createSignInCode(herald.store, made.view.tokenId, { now: clock.now(), lifetimeMs: 60_000 });
    expect(code).not.toContain(made.token);
    const page = await createWebClient(url).signIn(code);
    expect(page.status).toBe(200);
    expect(page.text).toContain('visitor by code'); // the token's name, shown as who is signed in
    await expect(createWebClient(url).signIn(code)).rejects.toThrow(/sign-in answered 401/);
    const late = await createSignInCode(herald.store, made.view.tokenId, { now: clock.now(), lifetimeMs: 60_000 });
    clock.advance(60_000);
    await expect(createWebClient(url).signIn(late.code)).rejects.toThrow(/sign-in answered 401/);
    const revoked = await createSignInCode(herald.store, made.view.tokenId, { now: clock.now(), lifetimeMs: 60_000 });
    await revokeToken(herald.store, made.view.tokenId, clock.now());
    await expect(createWebClient(url).signIn(revoked.code)).rejects.toThrow(/sign-in answered 401/);
  });

  it('refuses a wrong token on the sign-in page, saying so', async () => {
    const web = createWebClient(url);
    const page = await web.get('/ui/sign-in');
    const answer = await web.post('/ui/sign-in', { _csrf: csrfOf(page.text), token: 'herald_nope' });
    expect(answer.status).toBe(401);
    expect(answer.text).toContain('unknown, revoked, expired, already used or malformed');
    expect(web.cookies.has('herald_session')).toBe(false);
  });

  it('shows the delivery page, pauses and resumes a delivery through a confirmation step, audited', async () => {
    const web = createWebClient(url);
    await web.signIn(operator);
    const start = await web.get(`/ui/deliveries/${deliveryId}/confirm/start`);
    expect(start.status).toBe(200);
    expect((await web.post(`/ui/deliveries/${deliveryId}/start`, { _csrf: csrfOf(start.text) })).status).toBe(303);
    const page = await web.get(`/ui/deliveries/${deliveryId}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('hx-trigger="every 2s"');
    expect(page.text).toContain(`/ui/deliveries/${deliveryId}/confirm/pause`);
    expect(page.text).toContain('user_unknown');
    const confirm = await web.get(`/ui/deliveries/${deliveryId}/confirm/pause`);
    expect(confirm.text).toContain(`Pause delivery ${deliveryId}`);
    const paused = await web.post(`/ui/deliveries/${deliveryId}/pause`, { _csrf: csrfOf(confirm.text) });
    expect(paused.status).toBe(303);
    expect(
      (
        await herald.store.db
          .selectFrom('deliveries')
          .select('state')
          .where('id', '=', deliveryId)
          .executeTakeFirstOrThrow()
      ).state,
    ).toBe('paused');
    const resumed = await web.post(`/ui/deliveries/${deliveryId}/resume`, { _csrf: csrfOf(confirm.text) });
    expect(resumed.status).toBe(303);
    expect(page.text).toContain(`action="/ui/deliveries/${deliveryId}/priority"`);
    const raised = await web.post(`/ui/deliveries/${deliveryId}/priority`, {
      _csrf: csrfOf(page.text),
      priority: '8',
      weight: '3',
    });
    expect(raised.status).toBe(303);
    expect((await web.get(`/ui/deliveries/${deliveryId}`)).text).toContain('8 (weight 3)');
    const outOfRange = await web.post(`/ui/deliveries/${deliveryId}/priority`, {
      _csrf: csrfOf(page.text),
      priority: '12',
    });
    expect(outOfRange.status).toBe(400);
    expect(outOfRange.text).toContain('priority: expected an integer from 0 to 9, got 12');
    const audit = await herald.store.db
      .selectFrom('api_audit')
      .select(['route', 'status'])
      .where('route', 'like', 'web.%')
      .execute();
    expect(audit).toEqual(
      expect.arrayContaining([
        { route: 'web.pauseDelivery', status: 303 },
        { route: 'web.resumeDelivery', status: 303 },
        { route: 'web.setDeliveryPriority', status: 303 },
      ]),
    );
  });

  it('shows a viewer no action button and refuses its posts (403, audited)', async () => {
    const web = createWebClient(url);
    const page = await web.signIn(viewer);
    const delivery = await web.get(`/ui/deliveries/${deliveryId}`);
    expect(delivery.status).toBe(200);
    expect(delivery.text).not.toContain('/confirm/');
    expect(delivery.text).not.toContain('/priority"');
    const refused = await web.post(`/ui/deliveries/${deliveryId}/pause`, { _csrf: csrfOf(page.text) });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('needs the operator role');
    const audit = await herald.store.db
      .selectFrom('api_audit')
      .select(['route', 'status', 'error_code', 'role'])
      .where('route', '=', 'web.pauseDelivery')
      .where('status', '=', 403)
      .execute();
    expect(audit).toEqual([{ route: 'web.pauseDelivery', status: 403, error_code: 'FORBIDDEN', role: 'viewer' }]);
  });

  it('refuses forged and expired sessions, and those of revoked tokens', async () => {
    const forged = createWebClient(url);
    forged.cookies.set('herald_session', 'A'.repeat(43));
    const answer = await forged.get('/ui/deliveries');
    expect(answer.status).toBe(401);
    expect(answer.text).toContain('expired or was closed');

    const expiring = createWebClient(url);
    await expiring.signIn(operator);
    clock.advance(3_600_001);
    expect((await expiring.get('/ui/deliveries')).status).toBe(401);

    const { token, view } = await createToken(herald.store, { role: 'operator' }, clock.now());
    const revoked = createWebClient(url);
    await revoked.signIn(token);
    await revokeToken(herald.store, view.tokenId, clock.now());
    expect((await revoked.get('/ui/deliveries')).status).toBe(401);
  });

  it('refuses cross-site posts: no CSRF token, a wrong one, a foreign Origin', async () => {
    const web = createWebClient(url);
    const page = await web.signIn(operator);
    const csrf = csrfOf(page.text);
    const state = async () =>
      (
        await herald.store.db
          .selectFrom('deliveries')
          .select('state')
          .where('id', '=', deliveryId)
          .executeTakeFirstOrThrow()
      ).state;
    const before = await state();
    const missing = await web.post(`/ui/deliveries/${deliveryId}/pause`, {});
    expect(missing.status).toBe(403);
    expect(missing.text).toContain('no valid CSRF token');
    const wrong = await web.post(`/ui/deliveries/${deliveryId}/pause`, { _csrf: `${csrf.slice(0, -1)}x` });
    expect(wrong.status).toBe(403);
    const foreign = await web.post(
      `/ui/deliveries/${deliveryId}/pause`,
      { _csrf: csrf },
      { origin: 'https://evil.example' },
    );
    expect(foreign.status).toBe(403);
    expect(foreign.text).toContain('another origin (https://evil.example)');
    expect(await state()).toBe(before);
    // The sign-in form too: without its double-submit token, no session is opened.
    const fresh = createWebClient(url);
    const signIn = await fresh.post('/ui/sign-in', { token: operator });
    expect(signIn.status).toBe(403);
    expect(fresh.cookies.has('herald_session')).toBe(false);
  });

  it('counts posts without a session and refused sign-ins against the limiter, apart from wrong tokens, and stops auditing a blocked client', async () => {
    const limited = buildApiApp({ herald, limiter: createAuthLimiter({ failuresPerWindow: 3, windowMs: 60_000 }) });
    const limitedUrl = await limited.app.listen({ host: '127.0.0.1', port: 0 });
    const audited = async (path: string) =>
      (await herald.store.db.selectFrom('api_audit').select('status').where('path', '=', path).execute()).map(
        (row) => row.status,
      );
    try {
      const stranger = createWebClient(limitedUrl);
      const path = '/ui/deliveries/424242/pause';
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await stranger.post(path, {})).status);
      // Before: five 401 and five audit rows, a row per request for as long as the client went on.
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      expect(await audited(path)).toEqual([401, 401, 401]);
      clock.advance(60_000);
      // The same with a body that does not parse: refused before it is read. Before: five 400, five
      // audit rows, never counted, for as long as the client went on.
      const malformedPath = '/ui/deliveries/424243/pause';
      const malformed: number[] = [];
      for (let i = 0; i < 5; i++)
        malformed.push(
          (
            await fetch(`${limitedUrl}${malformedPath}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: '{',
            })
          ).status,
        );
      expect(malformed).toEqual([401, 401, 401, 429, 429]);
      expect(await audited(malformedPath)).toEqual([401, 401, 401]);
      clock.advance(60_000);
      // The public sign-in form, whose body is read before anything: counted when it does not parse.
      const signInsBefore = await audited('/ui/sign-in');
      const malformedSignIns: number[] = [];
      for (let i = 0; i < 5; i++)
        malformedSignIns.push(
          (
            await fetch(`${limitedUrl}/ui/sign-in`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: '{',
            })
          ).status,
        );
      expect(malformedSignIns).toEqual([400, 400, 400, 429, 429]);
      expect((await audited('/ui/sign-in')).slice(signInsBefore.length)).toEqual([400, 400, 400]);
      clock.advance(60_000);
      const signIns = await audited('/ui/sign-in');
      const forms: number[] = [];
      for (let i = 0; i < 5; i++) forms.push((await stranger.post('/ui/sign-in', { token: operator })).status);
      expect(forms).toEqual([403, 403, 403, 429, 429]);
      expect((await audited('/ui/sign-in')).slice(signIns.length)).toEqual([403, 403, 403]);
      // Forged forms (any web site can post them) do not stop the operator's own sign-in, nor a
      // signed-in session. Before: 429 until the window ended.
      const operatorBrowser = createWebClient(limitedUrl);
      const form = await operatorBrowser.get('/ui/sign-in');
      expect((await operatorBrowser.post('/ui/sign-in', { _csrf: csrfOf(form.text), token: operator })).status).toBe(
        303,
      );
      clock.advance(60_000);
    } finally {
      await limited.app.close();
    }
  });

  it('signs in behind a trusted TLS proxy (https origin, Secure cookies), and believes no other sender of X-Forwarded-*', async () => {
    const behind = async (trustedProxies: string[]) => {
      const app = buildApiApp({
        herald: { ...herald, config: { ...herald.config, api: { ...herald.config.api, trustedProxies } } },
      });
      const appUrl = await app.app.listen({ host: '127.0.0.1', port: 0 });
      try {
        // What the proxy forwards of a browser on https://<the same host>.
        const forwarded = { 'x-forwarded-proto': 'https', origin: `https://${new URL(appUrl).host}` };
        const web = createWebClient(appUrl);
        const form = await web.get('/ui/sign-in', forwarded);
        const answer = await web.post('/ui/sign-in', { _csrf: csrfOf(form.text), token: viewer }, forwarded);
        return { status: answer.status, cookies: answer.headers.getSetCookie() };
      } finally {
        await app.app.close();
      }
    };
    // Before: refused 403 (the https Origin is not http://host), with cookies never Secure.
    const trusted = await behind(['127.0.0.1']);
    expect(trusted.status).toBe(303);
    expect(trusted.cookies.find((c) => c.startsWith('herald_session='))).toMatch(/; Secure/);
    const stranger = await behind(['192.0.2.1']);
    expect(stranger.status).toBe(403);
  });

  it('takes the CSRF token from the X-CSRF-Token header (htmx), refuses oversized and foreign-Referer posts', async () => {
    const web = createWebClient(url);
    const page = await web.signIn(operator);
    const csrf = csrfOf(page.text);
    const state = async () =>
      (
        await herald.store.db
          .selectFrom('deliveries')
          .select('state')
          .where('id', '=', deliveryId)
          .executeTakeFirstOrThrow()
      ).state;
    const before = await state();
    const huge = await web.post(`/ui/deliveries/${deliveryId}/pause`, { _csrf: csrf, padding: 'x'.repeat(70_000) });
    expect(huge.status).toBe(413);
    expect(huge.text).toContain('<h1>');
    const referer = await web.post(
      `/ui/deliveries/${deliveryId}/pause`,
      { _csrf: csrf },
      { origin: '', referer: 'https://evil.example/page' },
    );
    expect(referer.status).toBe(403);
    expect(await state()).toBe(before);
    const viaHeader = await web.post(
      `/ui/deliveries/${deliveryId}/pause`,
      {},
      { 'x-csrf-token': csrf, 'hx-request': 'true' },
    );
    expect(viaHeader.status).toBe(303);
    expect(await state()).toBe('paused');
    await web.post(`/ui/deliveries/${deliveryId}/resume`, { _csrf: csrf });
    expect(await state()).toBe(before);
  });

  it('renders script in stored values inert (names, subjects, SMTP replies, user agents)', async () => {
    const log = await herald.store.db
      .selectFrom('delivery_logs')
      .select('id')
      .where('delivery_id', '=', deliveryId)
      .executeTakeFirstOrThrow();
    await insertTrackingEvents(herald.store, [
      {
        deliveryId,
        logId: log.id,
        kind: 'click',
        linkIndex: null,
        at: clock.now(),
        flags: 2,
        userAgent: `curl ${script}`,
      },
    ]);
    const web = createWebClient(url);
    await web.signIn(viewer);
    const pages = [
      await web.get('/ui/deliveries'),
      await web.get(`/ui/deliveries/${deliveryId}`),
      await web.get(`/ui/deliveries/${deliveryId}/logs?status=failed`),
    ];
    for (const page of pages) {
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('<script>alert');
      expect(page.text).not.toContain('<img src=x');
    }
    expect(pages[0]!.text).toContain('Spring &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(pages[1]!.text).toContain('&lt;img src=x onerror=alert(2)&gt;');
    expect(pages[1]!.text).toContain('curl &lt;script&gt;');
    expect(pages[1]!.text).toContain('scannerAgent');
    expect(pages[2]!.text).toContain('5.1.1 &lt;script&gt;');
    expect(pages[0]!.text).toContain('viewer &lt;script&gt;');
  });

  it('sends a CSP without inline script, serves the assets with long cache headers, and has error pages', async () => {
    const web = createWebClient(url);
    const page = await web.get('/ui/sign-in');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const assets = [...page.text.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(5);
    for (const asset of assets) {
      const answer = await web.get(asset);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    }
    await web.signIn(viewer);
    const missing = await web.get('/ui/deliveries/999999');
    expect(missing.status).toBe(404);
    expect(missing.text).toContain('delivery 999999 does not exist');
    expect((await web.get('/ui/deliveries?state=bogus')).status).toBe(400);
  });

  it('answers an htmx request that fails with a notice to swap in, not a whole page inside the page', async () => {
    const web = createWebClient(url);
    await web.signIn(viewer);
    // The live region of a delivery that is gone, and a path that does not exist, polled by htmx.
    for (const [path, status] of [
      ['/ui/deliveries/999999/live', 404],
      ['/ui/deliveries/1/nothing-here', 404],
    ] as const) {
      const answer = await web.get(path, { 'hx-request': 'true' });
      expect(answer.status).toBe(status);
      expect(answer.text).toMatch(/^<div class="notice error" role="alert">Not found: /);
      expect(answer.text).not.toContain('<nav');
    }
  });
});
