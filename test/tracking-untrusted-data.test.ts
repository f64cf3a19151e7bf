import { afterAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { compileContent } from '../src/delivery/content.ts';
import { linkEnd, linkMiddle, linkStart, pixelMarker } from '../src/tracking/links.ts';
import { createTrackingService, type TrackingService } from '../src/tracking/service.ts';
import { heraldOver, seedTrackedDelivery, type SeededDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { describeEachDialect } from './support/databases.ts';

// Recipient data is untrusted: it can neither create nor redirect a tracked link, and it prints as
// text in HTML bodies and on the mirror page.

const markers = [linkStart, linkMiddle, linkEnd, pixelMarker];
const fields = ['first_name', 'city', 'note'] as const;
const template = `<html><head><title>{{ first_name }}</title></head><body><p>Hi {{ first_name }} ({{ note }})</p>
<a href="https://shop.example.com/sale">Sale</a>
{% for i in (1..2) %}<a href="https://example.com/{{ city | url_encode }}/{{ i }}">Pick {{ i }}</a>{% endfor %}
<a href="{{ mirror_url }}">online</a></body></html>`;
const templateHosts = ['https://shop.example.com/', 'https://example.com/'];

/** What an attacker puts in a field: a complete fake tracked link for each index, around the marker under test. */
const injection = (marker: string) =>
  `a${marker}b${linkStart}0${linkMiddle}https://evil.test/0${linkEnd}${linkStart}1${linkMiddle}https://evil.test/1${linkEnd}${marker}c`;

describeEachDialect('untrusted recipient data', (ctx) => {
  const t0 = Date.UTC(2026, 2, 1, 12);
  const clock = manualClock(t0);
  const issuedAt = Math.floor(t0 / 1000);
  let service: TrackingService;
  // Its event log flushes to a writer thread (SQLite) that must end with the file.
  afterAll(async () => {
    await service?.close();
  });
  let seeded: SeededDelivery;
  const tokenOf = (kind: 'mirror', logId: number) =>
    service.keyRing.sign({ kind, deliveryId: seeded.deliveryId, logId, issuedAt });

  it('every marker character in every field: no tracked link points outside the template links', async () => {
    service = await createTrackingService(
      heraldOver(ctx.store(), { tracking: { baseUrl: 'https://t.herald.test', flushIntervalMs: 10 } }, clock),
    );
    const recipients = markers.flatMap((marker, m) =>
      fields.map((field, f) => ({
        email: `r${m}-${f}@example.test`,
        data: { first_name: 'Ann', city: 'Paris', note: 'hi', [field]: injection(marker) },
      })),
    );
    seeded = await seedTrackedDelivery(ctx.store(), { name: 'untrusted', html: template, now: t0, recipients });
    expect(seeded.logs).toHaveLength(markers.length * fields.length);
    for (const log of seeded.logs) {
      const page = await service.app.inject({ url: `/m/${tokenOf('mirror', log.id)}` });
      expect(page.statusCode, log.email).toBe(200);
      expect(page.body).not.toMatch(/[\uE000-\uE003]/);
      const tokens = [...page.body.matchAll(/https:\/\/t\.herald\.test\/r\/([A-Za-z0-9_-]+)/g)].map((m) => m[1]!);
      // The template's three rendered links, no more.
      expect(tokens, log.email).toHaveLength(3);
      for (const token of tokens) {
        const verified = service.keyRing.verify(token, t0);
        expect(verified.ok).toBe(true);
        const redirect = await service.app.inject({ url: `/r/${token}` });
        expect(redirect.statusCode, log.email).toBe(302);
        const location = String(redirect.headers.location);
        expect(
          templateHosts.some((host) => location.startsWith(host)),
          `${log.email} → ${location}`,
        ).toBe(true);
        expect(location).not.toContain('evil.test/');
      }
    }
  });

  it('HTML bodies and the mirror page escape data; the mirror CSP forbids forms, <base> and framing', async () => {
    const hostile = {
      first_name: '<script>alert(1)</script><a href="https://evil.test/x">win</a>',
      city: 'x" onmouseover="alert(1)',
      note: '<meta http-equiv="refresh" content="0;url=https://evil.test/">',
    };
    const more = await seedTrackedDelivery(ctx.store(), {
      name: 'hostile',
      html: template,
      now: t0,
      recipients: [{ email: 'hostile@example.test', data: hostile }],
    });
    const token = service.keyRing.sign({
      kind: 'mirror',
      deliveryId: more.deliveryId,
      logId: more.logs[0]!.id,
      issuedAt,
    });
    const page = await service.app.inject({ url: `/m/${token}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(
      'Hi &lt;script&gt;alert(1)&lt;/script&gt;&lt;a href=&#34;https://evil.test/x&#34;&gt;win&lt;/a&gt;',
    );
    expect(page.body).not.toContain('<script');
    expect(page.body).not.toMatch(/<meta[^>]*http-equiv/i);
    expect(page.body).not.toContain('href="https://evil.test');
    const csp = String(page.headers['content-security-policy']);
    for (const directive of ["form-action 'none'", "base-uri 'none'", "frame-ancestors 'none'", "default-src 'none'"])
      expect(csp).toContain(directive);
  });

  it("the operator's own <meta http-equiv=refresh> does not survive on the mirror page, however it is written", async () => {
    const variants = [
      '<meta http-equiv="refresh" content="0;url=https://evil.test/">',
      "<META HTTP-EQUIV='Refresh' CONTENT='5; URL=https://evil.test/'>",
      '<meta content="0;url=https://evil.test/" http-equiv = " REFRESH " />',
      '<meta http-equiv="&#114;efresh" content="0;url=https://evil.test/">',
      '<template><meta http-equiv=refresh content="0;url=https://evil.test/"></template>',
    ];
    const more = await seedTrackedDelivery(ctx.store(), {
      name: 'refresh',
      html: `<html><head>${variants.join('')}<meta charset="utf-8"></head><body><p>Hi {{ first_name }}</p></body></html>`,
      now: t0,
      recipients: [{ email: 'refresh@example.test', data: { first_name: 'Ann' } }],
    });
    const token = service.keyRing.sign({
      kind: 'mirror',
      deliveryId: more.deliveryId,
      logId: more.logs[0]!.id,
      issuedAt,
    });
    const page = await service.app.inject({ url: `/m/${token}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Hi Ann');
    expect(page.body).toContain('<meta charset="utf-8">');
    expect(page.body.toLowerCase()).not.toContain('evil.test');
    expect(page.body.toLowerCase()).not.toContain('http-equiv');
  });
});

it('HTML templates escape outputs unless they ask for raw; subject and text print values as they are', () => {
  const compiled = compileContent({
    subject: 'For {{ name }}',
    html: '<p>{{ name }}</p><p>{{ name | upcase }}</p><div>{{ snippet | raw }}</div><p>{{ missing | default: "a&b" }}</p>',
    text: 'Hi {{ name }}',
  });
  const rendered = compiled.render({ name: `Tom & "Jerry" <b>'s`, snippet: '<b>bold</b>', missing: '' }, 'x@y.test');
  expect(rendered.html).toBe(
    '<p>Tom &amp; &#34;Jerry&#34; &lt;b&gt;&#39;s</p><p>TOM &amp; &#34;JERRY&#34; &lt;B&gt;&#39;S</p><div><b>bold</b></div><p>a&amp;b</p>',
  );
  expect(rendered.subject).toBe(`For Tom & "Jerry" <b>'s`);
  expect(rendered.text).toBe(`Hi Tom & "Jerry" <b>'s`);
  // The fast path (plain substitutions) gives what LiquidJS gives.
  const fast = compileContent({ subject: 's', html: '<p>{{ name }}</p>', text: null });
  expect(fast.render({ name: 'Ann' }, 'x@y.test').html).toBe('<p>Ann</p>');
  expect(fast.render({ name: 'A<b>' }, 'x@y.test').html).toBe('<p>A&lt;b&gt;</p>');
});
