import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { automatedFlags } from '../src/tracking/automation.ts';
import { createTrackingService, type TrackingService } from '../src/tracking/service.ts';
import { heraldOver, seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';

const html = `<html><body><p>Hi {{ first_name }}</p>
<a href="https://shop.example.com/sale?a=1&amp;b=2">Sale</a>
{% for i in (1..2) %}<a href="https://example.com/{{ city | downcase }}/{{ i }}">Pick {{ i }}</a>{% endfor %}
<a href="{{ mirror_url }}">online</a></body></html>`;
const browser =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

describeEachDialect('tracking server', (ctx) => {
  const t0 = Date.UTC(2026, 2, 1, 12);
  const clock = manualClock(t0);
  let service: TrackingService;
  let seeded: Awaited<ReturnType<typeof seedTrackedDelivery>>;
  const issuedAt = Math.floor(t0 / 1000);

  const click = (logId: number, linkIndex: number, occurrence = 0, at = issuedAt) =>
    service.keyRing.sign({ kind: 'click', deliveryId: seeded.deliveryId, logId, linkIndex, occurrence, issuedAt: at });
  const token = (kind: 'open' | 'mirror' | 'unsubscribe', logId: number) =>
    service.keyRing.sign({ kind, deliveryId: seeded.deliveryId, logId, issuedAt });
  const eventsOf = async (deliveryId: number) => {
    await service.events.flush();
    return ctx
      .store()
      .db.selectFrom('tracking_events')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .orderBy('id')
      .execute();
  };

  it('starts with a generated key and redirects a static link (no URL from the request)', async () => {
    const herald = heraldOver(
      ctx.store(),
      { tracking: { baseUrl: 'https://t.herald.test', flushIntervalMs: 10 } },
      clock,
    );
    service = await createTrackingService(herald);
    seeded = await seedTrackedDelivery(ctx.store(), {
      name: 'tracked',
      html,
      now: t0,
      recipients: [
        { email: 'ada@example.test', data: { first_name: 'Ada', city: 'Paris' } },
        { email: 'alan@example.org', data: { first_name: 'Alan', city: 'Oslo' } },
        { email: 'eve@example.test', data: { first_name: 'Eve', city: 'x\r\nSet-Cookie: a=1' } },
      ],
      // Eve's city would fail preparation (a link with CR LF): the redirect must refuse it all the same.
      dataAfterPreparation: true,
    });
    const links = await ctx
      .store()
      .db.selectFrom('tracking_links')
      .selectAll()
      .where('delivery_id', '=', seeded.deliveryId)
      .orderBy('link_index')
      .execute();
    expect(links.map((l) => l.url_template)).toEqual([
      'https://shop.example.com/sale?a=1&amp;b=2',
      'https://example.com/{{ city | downcase }}/{{ i }}',
    ]);
    clock.advance(60_000);
    const response = await service.app.inject({
      method: 'GET',
      url: `/r/${click(seeded.logs[0]!.id, 0)}?next=https://evil.test`,
      headers: { 'user-agent': browser },
    });
    expect(response.statusCode).toBe(302);
    expect(response.headers.location).toBe('https://shop.example.com/sale?a=1&b=2');
    const events = await eventsOf(seeded.deliveryId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'click', log_id: seeded.logs[0]!.id, link_index: 0, flags: 0 });
  });

  it('renders a personalized link inside a loop for the right recipient and occurrence', async () => {
    const first = await service.app.inject({
      url: `/r/${click(seeded.logs[0]!.id, 1, 1)}`,
      headers: { 'user-agent': browser },
    });
    expect(first.headers.location).toBe('https://example.com/paris/2');
    const second = await service.app.inject({
      url: `/r/${click(seeded.logs[1]!.id, 1, 0)}`,
      headers: { 'user-agent': browser },
    });
    expect(second.headers.location).toBe('https://example.com/oslo/1');
    const missing = await service.app.inject({ url: `/r/${click(seeded.logs[1]!.id, 1, 5)}` });
    expect(missing.statusCode).toBe(404);
  });

  it('answers tampered, unknown-kind, expired, oversized and encoded tokens with a plain 404 and no Location', async () => {
    const good = click(seeded.logs[0]!.id, 0);
    const tampered = good.slice(0, 10) + (good[10] === 'A' ? 'B' : 'A') + good.slice(11);
    const expired = click(seeded.logs[0]!.id, 0, 0, issuedAt - 400 * 86_400);
    for (const path of [
      `/r/${tampered}`,
      `/r/${token('open', seeded.logs[0]!.id)}`,
      `/r/${expired}`,
      `/r/${'A'.repeat(5_000)}`,
      `/r/${good}%0d%0aLocation:%20https://evil.test`,
      `/r/..%2F..%2Fhttps:%2F%2Fevil.test`,
      `/r/%2F%2Fevil.test`,
      `/r/${good}/https://evil.test`,
      `/r/`,
      `/r/${encodeURIComponent('https://evil.test')}`,
    ]) {
      const response = await service.app.inject({ url: path });
      // Oversized: 414 from the router before any handler runs; everything else: the plain 404 page.
      expect(path.length > 200 ? 414 : 404, path.slice(0, 80)).toBe(response.statusCode);
      expect(response.headers.location, path.slice(0, 80)).toBeUndefined();
      expect(response.body).not.toContain('evil');
    }
  });

  it('answers a path the router refuses (too long, bad percent-encoding) with a plain page that quotes nothing of it', async () => {
    for (const [path, status] of [
      [`/r/${'A'.repeat(300)}<script>alert('evil')</script>`, 414],
      [`/m/${'B'.repeat(300)}evil`, 414],
      ['/r/%ZZevil', 400],
    ] as const) {
      const response = await service.app.inject({ url: path });
      expect(response.statusCode, path.slice(-20)).toBe(status);
      expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(response.body).toMatch(/^<!doctype html>/);
      expect(response.body).not.toMatch(/evil|script|AAAA|BBBB/);
    }
  });

  it('refuses a link whose personalization would inject a header', async () => {
    const response = await service.app.inject({ url: `/r/${click(seeded.logs[2]!.id, 1)}` });
    expect(response.statusCode).toBe(404);
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(response.headers.location).toBeUndefined();
  });

  it('flags HEAD requests, scanner user agents, clicks right after sending and bursts — and keeps them', async () => {
    const before = (await eventsOf(seeded.deliveryId)).length;
    const logId = seeded.logs[1]!.id;
    // A minute after Alan's own click: with it, these three would make a burst of four (all left out of human).
    clock.advance(60_000);
    await service.app.inject({ method: 'HEAD', url: `/r/${click(logId, 0)}`, headers: { 'user-agent': browser } });
    await service.app.inject({
      url: `/r/${click(logId, 0)}`,
      headers: { 'user-agent': 'Mozilla/5.0 (compatible; Barracuda Sentinel)' },
    });
    await service.app.inject({
      url: `/r/${click(logId, 0, 0, Math.floor(clock.now() / 1000) - 2)}`,
      headers: { 'user-agent': browser },
    });
    const events = (await eventsOf(seeded.deliveryId)).slice(before);
    expect(events.map((e) => e.flags & automatedFlags.head)).toEqual([automatedFlags.head, 0, 0]);
    expect(events[1]!.flags & automatedFlags.scannerAgent).toBe(automatedFlags.scannerAgent);
    expect(events[2]!.flags & automatedFlags.tooSoon).toBe(automatedFlags.tooSoon);
    expect(events[2]!.flags & automatedFlags.burst).toBe(automatedFlags.burst);
  });

  it('serves the open pixel uncached, whatever the token, and logs only valid opens', async () => {
    const before = (await eventsOf(seeded.deliveryId)).length;
    const response = await service.app.inject({
      url: `/o/${token('open', seeded.logs[0]!.id)}`,
      headers: { 'user-agent': 'Mozilla/5.0' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('image/gif');
    expect(response.headers['cache-control']).toContain('no-store');
    expect(response.rawPayload.subarray(0, 6).toString()).toBe('GIF89a');
    expect((await service.app.inject({ url: '/o/garbage' })).statusCode).toBe(200);
    const events = (await eventsOf(seeded.deliveryId)).slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'open', flags: automatedFlags.privacyProxy });
  });

  it('renders the mirror page for that recipient, with tracked links and no pixel', async () => {
    const response = await service.app.inject({ url: `/m/${token('mirror', seeded.logs[0]!.id)}` });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-security-policy']).toContain("default-src 'none'");
    expect(response.body).toContain('Hi Ada');
    expect(response.body).toMatch(/href="https:\/\/t\.herald\.test\/r\/[A-Za-z0-9_-]+">Pick 2/);
    expect(response.body).not.toContain('/o/');
    expect((await service.app.inject({ url: `/m/${token('unsubscribe', seeded.logs[0]!.id)}` })).statusCode).toBe(404);
  });

  it('GET /u/ only asks; the one-click POST denylists the address at once', async () => {
    const email = seeded.logs[1]!.email;
    const path = `/u/${token('unsubscribe', seeded.logs[1]!.id)}`;
    const page = await service.app.inject({ url: path });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<form method="post">');
    // No other site may frame it under a decoy and have the button clicked; the form posts only here.
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['content-security-policy']).toContain("form-action 'self'");
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(
      await ctx.store().db.selectFrom('addresses').selectAll().where('email', '=', email).executeTakeFirst(),
    ).toBeUndefined();
    const tooBig = await service.app.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'x'.repeat(10_000),
    });
    expect(tooBig.statusCode).toBe(413);
    const posted = await service.app.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'List-Unsubscribe=One-Click',
    });
    expect(posted.statusCode).toBe(200);
    expect(
      await ctx
        .store()
        .db.selectFrom('addresses')
        .select(['state', 'reason'])
        .where('email', '=', email)
        .executeTakeFirst(),
    ).toEqual({ state: 'denylisted', reason: 'unsubscribe' });
    const forged = await service.app.inject({
      method: 'POST',
      url: `/u/${token('mirror', seeded.logs[0]!.id)}`,
      payload: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'text/plain' },
    });
    expect(forged.statusCode).toBe(404);
  });

  it('consolidates indicators with and without flagged events, by link and domain, opens deduplicated within a minute', async () => {
    const { consolidatePending } = await import('../src/tracking/consolidation-run.ts');
    const { deliveryTrackingStats } = await import('../src/tracking/stats.ts');
    const logs = seeded.logs;
    // Ada: two human opens 30 s apart (one total open) and a third 2 minutes later; Eve opens via MPP.
    for (const offset of [0, 30_000, 150_000]) {
      clock.advance(offset === 0 ? 0 : offset === 30_000 ? 30_000 : 120_000);
      await service.app.inject({ url: `/o/${token('open', logs[0]!.id)}`, headers: { 'user-agent': browser } });
    }
    await service.app.inject({ url: `/o/${token('open', logs[2]!.id)}`, headers: { 'user-agent': 'Mozilla/5.0' } });
    await service.events.flush();
    const summary = await consolidatePending(ctx.store(), 60_000, clock.now());
    expect(summary.deliveries).toContain(seeded.deliveryId);
    const stats = await deliveryTrackingStats(ctx.store(), seeded.deliveryId);
    // Clicks so far: Ada 0,1,1 (human); Alan 1 (human) + HEAD + scanner + too-soon/burst; opens: Ada human, Ada MPP earlier test, Eve MPP.
    expect(stats.all).toMatchObject({
      sent: 3,
      uniqueOpens: 2,
      uniqueClickers: 2,
      totalClicks: 6,
      optOuts: 1,
      mirrorViews: 1,
      estimatedOpens: 3,
    });
    // Ada's MPP open (pixel test) and her first open here share a minute, +30 s too: counted once; +150 s counts → 2, Eve 1.
    expect(stats.all.totalOpens).toBe(3);
    expect(stats.human).toMatchObject({ uniqueOpens: 1, totalOpens: 2, uniqueClickers: 2, totalClicks: 3, optOuts: 1 });
    // Human estimated opens: Ada (pixel) and Alan (a click proves the open) → reactivity 2 / 2; all: 2 / 3.
    expect(stats.human.estimatedOpens).toBe(2);
    expect(stats.human.reactivity).toBe(1);
    expect(stats.all.reactivity).toBeCloseTo(2 / 3, 3);
    expect(stats.links.map((l) => [l.index, l.clicks, l.humanClicks])).toEqual([
      [0, 4, 1],
      [1, 2, 2],
    ]);
    expect(stats.domains.find((d) => d.domain === 'example.org')).toMatchObject({ sent: 1, clickers: 1, optOuts: 1 });
    // Idempotent: nothing new → nothing recomputed, same numbers.
    expect((await consolidatePending(ctx.store(), 60_000, clock.now())).deliveries).toEqual([]);
    expect(await deliveryTrackingStats(ctx.store(), seeded.deliveryId)).toEqual(stats);
  });

  it('herald delivery stats ID --json prints the consolidated indicators; unknown ids are NOT_FOUND', async () => {
    const run = await runHerald(ctx.url(), ['delivery', 'stats', String(seeded.deliveryId), '--json']);
    expect(run.exitCode).toBe(0);
    const [stats] = run.json<{
      deliveryId: number;
      all: { uniqueClickers: number };
      human: { uniqueClickers: number };
      links: unknown[];
    }>();
    expect(stats).toMatchObject({
      deliveryId: seeded.deliveryId,
      all: { uniqueClickers: 2 },
      human: { uniqueClickers: 2 },
    });
    expect(stats!.links).toHaveLength(2);
    const text = await runHerald(ctx.url(), ['delivery', 'stats', String(seeded.deliveryId)]);
    expect(text.stdout.join('\n')).toContain('unique clickers');
    const missing = await runHerald(ctx.url(), ['delivery', 'stats', '999999', '--json']);
    expect(missing.exitCode).toBe(1);
    expect(missing.json<{ error: { code: string } }>()[0]!.error.code).toBe('NOT_FOUND');
  });

  it('survives a flood: the bounded buffer drops and counts, every request is answered, the log holds whole batches', async () => {
    const herald = heraldOver(
      ctx.store(),
      {
        tracking: {
          baseUrl: 'https://t.herald.test',
          maxBufferedEvents: 100,
          flushBatchSize: 40,
          flushIntervalMs: 60_000,
        },
      },
      clock,
    );
    const flooded = await createTrackingService(herald);
    const before = Number(
      (
        await ctx
          .store()
          .db.selectFrom('tracking_events')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
    const path = `/r/${flooded.keyRing.sign({ kind: 'click', deliveryId: seeded.deliveryId, logId: seeded.logs[0]!.id, linkIndex: 0, occurrence: 0, issuedAt })}`;
    const responses = await Promise.all(Array.from({ length: 400 }, () => flooded.app.inject({ url: path })));
    expect(responses.every((r) => r.statusCode === 302)).toBe(true);
    await flooded.close();
    const stats = flooded.events.stats();
    // One message's token replayed: 200 over its budget are not logged; of the rest, the buffer drops some.
    expect(stats.overBudget).toBe(200);
    expect(stats.written + stats.dropped).toBe(200);
    expect(stats.dropped).toBeGreaterThan(0);
    const after = Number(
      (
        await ctx
          .store()
          .db.selectFrom('tracking_events')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
    expect(after - before).toBe(stats.written);
  });

  it('a click on the mirror page right after it loads is not flagged automated (its links are signed as of the sending)', async () => {
    const before = (await eventsOf(seeded.deliveryId)).length;
    clock.advance(3_600_000);
    const page = await service.app.inject({ url: `/m/${token('mirror', seeded.logs[0]!.id)}` });
    const first = /href="https:\/\/t\.herald\.test(\/r\/[A-Za-z0-9_-]+)"/.exec(page.body)![1]!;
    clock.advance(2_000);
    const response = await service.app.inject({ url: first, headers: { 'user-agent': browser } });
    expect(response.statusCode).toBe(302);
    const clicks = (await eventsOf(seeded.deliveryId)).slice(before).filter((e) => e.kind === 'click');
    expect(clicks).toHaveLength(1);
    expect(clicks[0]!.flags & automatedFlags.tooSoon).toBe(0);
  });

  it('serves on a real port (loopback)', async () => {
    const address = await service.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const response = await fetch(`${address}/r/${click(seeded.logs[0]!.id, 0)}`, {
        redirect: 'manual',
        headers: { 'user-agent': browser },
      });
      expect(response.status).toBe(302);
      expect(response.headers.get('location')).toBe('https://shop.example.com/sale?a=1&b=2');
      expect((await fetch(`${address}/r/nope`)).status).toBe(404);
    } finally {
      await service.close();
    }
  });
});
