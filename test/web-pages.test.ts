import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { replyShape } from '../src/bounce/qualification-normalize.ts';
import { recordUnmatchedReplies } from '../src/bounce/qualification-store.ts';
import { applyAddressEvents } from '../src/quarantine/address-events.ts';
import { getAddress } from '../src/quarantine/quarantine-store.ts';
import { DEFAULT_QUARANTINE_SETTINGS, type AddressEvent } from '../src/quarantine/types.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { createWorkflowRegistry } from '../src/workflows/registry.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import type { WorkflowDefinition } from '../src/workflows/types.ts';
import { describeEachDialect } from './support/databases.ts';
import { createWebClient, csrfOf } from './support/web-client.ts';

// The dashboard's other pages over real HTTP on both dialects: technical workflows (list, a
// workflow's runs and logs, restart of a failed run behind a confirmation page), the quarantine
// (search, an address's timeline, release one, bulk release after a dry run), with roles, audit and
// stored text (bounce texts, notes) rendered inert.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));
const script = '<script>alert(1)</script>';

describeEachDialect('dashboard pages over HTTP', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let url: string;
  let viewer: string;
  let operator: string;
  let admin: string;
  let broken = true;
  const siteRules = join(mkdtempSync(join(tmpdir(), 'herald-web-rules-')), 'bounce.yaml');

  const flaky: WorkflowDefinition = {
    name: 'flaky',
    description: 'fails once, then works',
    schedule: '0 4 * * *',
    steps: [
      {
        name: 'prepare',
        run: async (step) => {
          await step.log(`prepared ${script}`);
          return { kind: 'done', summary: 'ready' };
        },
      },
      {
        name: 'write',
        run: async () => (broken ? { kind: 'failed', error: `disk full ${script}` } : { kind: 'done' }),
      },
    ],
  };

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() }, bounce: { siteRulesFile: siteRules } }, 'test'),
      logger: silentLogger,
      clock,
    });
    viewer = (await createToken(herald.store, { role: 'viewer' }, clock.now())).token;
    operator = (await createToken(herald.store, { role: 'operator' }, clock.now())).token;
    admin = (await createToken(herald.store, { role: 'admin' }, clock.now())).token;
    const engine = createWorkflowEngine({
      ...herald,
      ticker: manualTicker,
      registry: createWorkflowRegistry([flaky]),
    });
    api = buildApiApp({ herald, engine });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  it('lists workflows, runs one that fails, shows its error inert, and restarts it from the failed step', async () => {
    const web = createWebClient(url);
    await web.signIn(operator);
    const list = await web.get('/ui/workflows');
    expect(list.status).toBe(200);
    expect(list.text).toContain('href="/ui/workflows/flaky"');
    expect(list.text).toContain('/ui/workflows/flaky/confirm/run');
    const confirm = await web.get('/ui/workflows/flaky/confirm/run');
    expect(confirm.status).toBe(200);
    expect((await web.post('/ui/workflows/flaky/run', { _csrf: csrfOf(confirm.text) })).status).toBe(303);
    const failed = await web.get('/ui/workflows/flaky');
    expect(failed.text).toContain('state-failed');
    expect(failed.text).toContain('disk full &lt;script&gt;');
    expect(failed.text).toContain('prepared &lt;script&gt;');
    expect(failed.text).not.toContain(script);
    expect(failed.text).toContain('/ui/workflows/flaky/confirm/restart');
    broken = false;
    const restart = await web.post('/ui/workflows/flaky/restart', { _csrf: csrfOf(failed.text) });
    expect(restart.status).toBe(303);
    const fixed = await web.get('/ui/workflows/flaky');
    expect(fixed.text).toContain('restart of');
    expect(fixed.text).not.toContain('/ui/workflows/flaky/confirm/restart');
    const audit = await herald.store.db
      .selectFrom('api_audit')
      .select(['route', 'status'])
      .where('route', 'in', ['web.runWorkflow', 'web.restartWorkflow'])
      .orderBy('id')
      .execute();
    expect(audit).toEqual([
      { route: 'web.runWorkflow', status: 303 },
      { route: 'web.restartWorkflow', status: 303 },
    ]);
  });

  it('pages through a quarantine larger than one page, newest first, without skipping or repeating an address', async () => {
    // 205 addresses, most with the same update time: the page boundary falls inside a tie.
    const rows = Array.from({ length: 205 }, (_, i) => ({
      email: `p${String(i).padStart(3, '0')}@paged.test`,
      state: 'quarantined' as const,
      error_count: 1,
      last_error_at: clock.now(),
      reason: 'user_unknown',
      updated_at: clock.now() - (i < 5 ? 0 : 1_000),
    }));
    await context.store().db.insertInto('addresses').values(rows).execute();
    const web = createWebClient(url);
    await web.signIn(viewer);
    const seen: string[] = [];
    let path: string | null = '/ui/quarantine?domain=paged.test';
    let pages = 0;
    while (path !== null) {
      const page = await web.get(path);
      expect(page.status).toBe(200);
      seen.push(...[...page.text.matchAll(/>(p\d{3}@paged\.test)</g)].map((m) => m[1]!));
      const next = /href="([^"]*after=[^"]*)">Next 200/.exec(page.text)?.[1];
      path = next ? next.replaceAll('&amp;', '&') : null;
      pages += 1;
    }
    expect(pages).toBe(2);
    expect(seen).toHaveLength(205);
    expect(new Set(seen).size).toBe(205);
    expect(seen.slice(0, 5)).toEqual([
      'p000@paged.test',
      'p001@paged.test',
      'p002@paged.test',
      'p003@paged.test',
      'p004@paged.test',
    ]);
    expect((await web.get('/ui/quarantine?after=yesterday')).status).toBe(400);
  });

  it('searches the quarantine, shows a timeline inert, releases one address and a domain after a dry run', async () => {
    const blocked = {
      category: 'blocked' as const,
      reason: 'refused' as const,
      type: 'hard' as const,
      ruleId: 'ip-blocklist',
      packVersion: 'p1',
    };
    const now = clock.now();
    const events: AddressEvent[] = Array.from({ length: 4 }, (_, i) => ({
      email: `u${i}@bigisp.test`,
      at: now - 1_000 + i,
      source: 'smtp' as const,
      verdict: blocked,
      replyText: `554 5.7.1 blocked ${script}`,
    }));
    await applyAddressEvents(herald.store, events, DEFAULT_QUARANTINE_SETTINGS, now);
    const state = async (email: string) => (await getAddress(herald.store, email))?.state;
    const quarantined = await state('u0@bigisp.test');
    expect(quarantined).not.toBe('valid');

    const web = createWebClient(url);
    await web.signIn(operator);
    const list = await web.get('/ui/quarantine?domain=bigisp.test');
    expect(list.status).toBe(200);
    expect(list.text).toContain('u3@bigisp.test');
    const search = await web.get('/ui/quarantine?email=u0%40bigisp.test');
    expect(search.status).toBe(303);
    const address = await web.get(search.headers.get('location')!);
    expect(address.text).toContain('554 5.7.1 blocked &lt;script&gt;');
    expect(address.text).not.toContain(script);
    const released = await web.post('/ui/quarantine/release', {
      _csrf: csrfOf(address.text),
      email: 'u0@bigisp.test',
      note: `by hand ${script}`,
    });
    expect(released.status).toBe(303);
    expect(await state('u0@bigisp.test')).toBe('valid');
    const after = await web.get(released.headers.get('location')!);
    expect(after.text).toContain('by hand &lt;script&gt;');
    expect(after.text).not.toContain('older ones are not shown');
    // An address with more events than the timeline shows says so.
    const many = Array.from({ length: 201 }, (_, i) => ({ ...events[1]!, at: now - 500 + i }));
    await applyAddressEvents(herald.store, many, DEFAULT_QUARANTINE_SETTINGS, now);
    const busy = await web.get('/ui/quarantine/address?email=u1%40bigisp.test');
    expect(busy.text).toContain('The 200 most recent events; older ones are not shown.');

    const since = new Date(now - 60_000).toISOString();
    const preview = await web.get(`/ui/quarantine/bulk?domain=bigisp.test&since=${encodeURIComponent(since)}`);
    expect(preview.status).toBe(200);
    expect(preview.text).toContain('Dry run: 3 addresses would be released');
    expect(await state('u1@bigisp.test')).toBe(quarantined);
    const applied = await web.post('/ui/quarantine/bulk', {
      _csrf: csrfOf(preview.text),
      domain: 'bigisp.test',
      since,
    });
    expect(applied.status).toBe(200);
    expect(applied.text).toContain('Released 3 addresses of bigisp.test');
    expect(await state('u3@bigisp.test')).toBe('valid');
    const bad = await web.get('/ui/quarantine/bulk?domain=bigisp.test&since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('since: &#34;yesterday&#34; is not an ISO date');
  });

  it('renders the doctor, MX rules, database and mid-sourcing pages; database maintenance is for admins', async () => {
    const web = createWebClient(url);
    await web.signIn(viewer);
    for (const [path, heading] of [
      ['/ui/doctor', 'Doctor'],
      ['/ui/mx', 'MX rules and paths'],
      ['/ui/database', 'Database'],
      ['/ui/mid', 'Mid-sourcing'],
    ] as const) {
      const page = await web.get(path);
      expect(page.status, path).toBe(200);
      expect(page.text, path).toContain(`<h1>${heading}</h1>`);
    }
    const database = await web.get('/ui/database');
    expect(database.text).toContain('delivery_logs');
    expect(database.text).not.toContain('/ui/database/confirm/maintain');
    const operatorWeb = createWebClient(url);
    const operatorPage = await operatorWeb.signIn(operator);
    expect((await operatorWeb.post('/ui/database/maintain', { _csrf: csrfOf(operatorPage.text) })).status).toBe(403);
    const adminWeb = createWebClient(url);
    await adminWeb.signIn(admin);
    const confirm = await adminWeb.get('/ui/database/confirm/maintain');
    expect(confirm.status).toBe(200);
    const maintained = await adminWeb.post('/ui/database/maintain', { _csrf: csrfOf(confirm.text) });
    expect(maintained.status).toBe(303);
    expect((await adminWeb.get('/ui/database')).text).toContain('dashboard at');
  });

  it('shows the qualification table and recent bounces inert, qualifies an entry into a site rule', async () => {
    const now = clock.now();
    await recordUnmatchedReplies(
      herald.store,
      [
        {
          signature: 'sig-1',
          source: 'smtp',
          code: 550,
          enhancedStatus: '5.7.1',
          pattern: replyShape(550, '5.7.1', `mailbox ${script} refused`).pattern,
          example: `mailbox ${script} refused`,
          exampleLogId: null,
          count: 3,
          firstSeenAt: now - 1_000,
          lastSeenAt: now,
        },
      ],
      now,
    );
    await applyAddressEvents(
      herald.store,
      [
        {
          email: 'angry@mail.test',
          at: now,
          source: 'complaint',
          replyText: `Feedback-Type: abuse ${script}`,
          verdict: {
            category: 'feedback',
            reason: 'denylisted',
            type: 'ignored',
            ruleId: 'report.arf',
            packVersion: 'p1',
          },
        },
      ],
      DEFAULT_QUARANTINE_SETTINGS,
      now,
    );
    const operatorWeb = createWebClient(url);
    await operatorWeb.signIn(operator);
    const page = await operatorWeb.get('/ui/bounces');
    expect(page.status).toBe(200);
    expect(page.text).toContain('mailbox &lt;script&gt;');
    expect(page.text).toContain('Feedback-Type: abuse &lt;script&gt;');
    expect(page.text).not.toContain(script);
    // The complaint counts in the rates by domain (computed on both dialects).
    expect(page.text).toMatch(/<td>mail\.test<\/td><td>\d{4}-\d{2}-\d{2}<\/td>/);
    const id = /action="\/ui\/bounces\/(\d+)\/ignore"/.exec(page.text)![1]!;
    // Qualifying writes a site bounce rule: admin, as the API's qualifyEntry (an operator got 303 and a rule).
    expect(page.text).not.toContain(`/ui/bounces/${id}/qualify`);
    const byOperator = await operatorWeb.post(`/ui/bounces/${id}/qualify`, {
      _csrf: csrfOf(page.text),
      category: 'userunknown',
    });
    expect(byOperator.status).toBe(403);
    expect(existsSync(siteRules)).toBe(false);
    const web = createWebClient(url);
    await web.signIn(admin);
    const adminPage = await web.get('/ui/bounces');
    expect(adminPage.text).toContain(`action="/ui/bounces/${id}/qualify"`);
    const wrong = await web.post(`/ui/bounces/${id}/qualify`, { _csrf: csrfOf(adminPage.text), category: 'nonsense' });
    expect(wrong.status).toBe(400);
    const qualified = await web.post(`/ui/bounces/${id}/qualify`, {
      _csrf: csrfOf(adminPage.text),
      category: 'rejected',
    });
    expect(qualified.status).toBe(303);
    expect(readFileSync(siteRules, 'utf8')).toContain('rejected');
    expect((await web.get('/ui/bounces?status=keep')).text).toContain('rejected');
    // Qualifying it again would write a rule the first one shadows: refused with the reason, not a crash.
    const again = await web.post(`/ui/bounces/${id}/qualify`, { _csrf: csrfOf(adminPage.text), category: 'blocked' });
    expect(again.status).toBe(422);
    expect(again.text).toContain('does not decide its own sample');
  });

  it('shows a viewer the workflows without actions and refuses its posts', async () => {
    const web = createWebClient(url);
    const page = await web.signIn(viewer);
    const list = await web.get('/ui/workflows');
    expect(list.text).not.toContain('/confirm/');
    expect((await web.post('/ui/workflows/flaky/pause', { _csrf: csrfOf(page.text) })).status).toBe(403);
    expect((await web.get('/ui/workflows/flaky/confirm/pause')).status).toBe(403);
    expect((await web.get('/ui/workflows/nope')).status).toBe(404);
    expect((await web.get('/ui/workflows/flaky?run=abc')).status).toBe(400);
    expect((await web.get('/ui/quarantine')).text).not.toContain('/ui/quarantine/bulk');
    expect((await web.get('/ui/quarantine/bulk')).status).toBe(403);
    expect(
      (await web.post('/ui/quarantine/release', { _csrf: csrfOf(page.text), email: 'u1@bigisp.test' })).status,
    ).toBe(403);
  });
});
