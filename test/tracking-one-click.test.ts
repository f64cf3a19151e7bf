import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { createTrackingService } from '../src/tracking/service.ts';
import { heraldOver, seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { describeEachDialect } from './support/databases.ts';

// POST /u/TOKEN unsubscribes only as RFC 8058 §3.2 asks: a body carrying List-Unsubscribe=One-Click,
// multipart/form-data (the RFC's example) or urlencoded. Any other POST — empty, JSON, another value
// — unsubscribed the address before; now it gets the confirmation form (400) and changes nothing.

const multipart = (value: string) =>
  [
    '--FormBoundaryjWmhtjORrn',
    'Content-Disposition: form-data; name="List-Unsubscribe"',
    '',
    value,
    '--FormBoundaryjWmhtjORrn--',
    '',
  ].join('\r\n');
const multipartType = 'multipart/form-data; boundary=FormBoundaryjWmhtjORrn';

describeEachDialect('one-click unsubscribe body', (ctx) => {
  it('unsubscribes on List-Unsubscribe=One-Click only', async () => {
    const t0 = Date.UTC(2026, 2, 1, 12);
    const service = await createTrackingService(
      heraldOver(ctx.store(), { tracking: { baseUrl: 'https://t.herald.test' } }, manualClock(t0)),
    );
    try {
      const seeded = await seedTrackedDelivery(ctx.store(), {
        name: 'one-click',
        html: '<html><body><a href="https://shop.example.com/">Shop</a></body></html>',
        now: t0,
        recipients: [{ email: 'ann@example.test' }, { email: 'bob@example.test' }],
      });
      const [ann, bob] = seeded.logs as [{ id: number; email: string }, { id: number; email: string }];
      const path = (logId: number) =>
        `/u/${service.keyRing.sign({ kind: 'unsubscribe', deliveryId: seeded.deliveryId, logId, issuedAt: Math.floor(t0 / 1000) })}`;
      const state = async (email: string) =>
        (await ctx.store().db.selectFrom('addresses').select('state').where('email', '=', email).executeTakeFirst())
          ?.state;

      for (const [contentType, payload] of [
        [undefined, undefined],
        ['application/x-www-form-urlencoded', ''],
        ['application/x-www-form-urlencoded', 'List-Unsubscribe=Yes'],
        ['application/x-www-form-urlencoded', 'unsubscribe=One-Click'],
        ['application/json', '{"List-Unsubscribe":"One-Click"}'],
        ['text/plain', 'please unsubscribe me'],
        [multipartType, multipart('Maybe')],
        ['multipart/form-data; boundary=other', multipart('One-Click')],
      ] as const) {
        const answer = await service.app.inject({
          method: 'POST',
          url: path(ann.id),
          headers: contentType ? { 'content-type': contentType } : {},
          ...(payload === undefined ? {} : { payload }),
        });
        expect(answer.statusCode, `${contentType} ${payload}`).toBe(400);
        expect(answer.body).toContain('<form method="post">');
      }
      expect(await state(ann.email)).toBeUndefined();

      const rfcExample = await service.app.inject({
        method: 'POST',
        url: path(ann.id),
        headers: { 'content-type': multipartType },
        payload: multipart('One-Click'),
      });
      expect(rfcExample.statusCode).toBe(200);
      expect(await state(ann.email)).toBe('denylisted');
      const form = await service.app.inject({
        method: 'POST',
        url: path(bob.id),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'List-Unsubscribe=One-Click',
      });
      expect(form.statusCode).toBe(200);
      expect(await state(bob.email)).toBe('denylisted');
    } finally {
      await service.close();
    }
  });
});
