import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { listDeliveries } from '../src/delivery/delivery-store.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { describeEachDialect } from './support/databases.ts';

// A client that times out on POST /deliveries cannot know whether the delivery was created: when it
// retried (as every HTTP client library does on a timeout), there were two. With an Idempotency-Key,
// the retry answers with the delivery the first request created, concurrent duplicates included.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));
const definition = { name: 'Spring', from: 'news@example.com', subject: 'Hello', text: 'Hi' };

describeEachDialect('API idempotent creation', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let crm: string;
  let other: string;
  let admin: string;
  let url: string;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock,
    });
    crm = (await createToken(herald.store, { role: 'operator', name: 'crm' }, clock.now())).token;
    other = (await createToken(herald.store, { role: 'operator', name: 'other' }, clock.now())).token;
    admin = (await createToken(herald.store, { role: 'admin', name: 'ops' }, clock.now())).token;
    api = buildApiApp({ herald });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  const create = (token: string, body: object, key?: string) =>
    fetch(`${url}/api/v1/deliveries`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        ...(key !== undefined && { 'idempotency-key': key }),
      },
      body: JSON.stringify(body),
    });
  const count = async () => (await listDeliveries(herald.store)).length;

  it('answers a retry with the same key with the delivery the first request created', async () => {
    const before = await count();
    const first = await create(crm, definition, 'order-1');
    expect(first.status).toBe(201);
    const created = (await first.json()) as { id: number };
    const retry = await create(crm, definition, 'order-1');
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(((await retry.json()) as { id: number }).id).toBe(created.id);
    expect(await count()).toBe(before + 1);
  });

  it('creates one delivery for concurrent requests with the same key', async () => {
    const before = await count();
    const answers = await Promise.all(Array.from({ length: 6 }, () => create(crm, definition, 'order-2')));
    expect(answers.map((answer) => answer.status)).toEqual(Array(6).fill(201));
    const ids = new Set(await Promise.all(answers.map(async (answer) => ((await answer.json()) as { id: number }).id)));
    expect(ids.size).toBe(1);
    expect(await count()).toBe(before + 1);
  });

  it('refuses a key reused with another body, keeps keys per token, and binds no key to a refused request', async () => {
    await create(crm, definition, 'order-3');
    const before = await count();
    const changed = await create(crm, { ...definition, subject: 'Other' }, 'order-3');
    expect(changed.status).toBe(400);
    const problem = (await changed.json()) as { code: string; errors: Array<{ path: string }> };
    expect(problem.code).toBe('INPUT_INVALID');
    expect(problem.errors[0]!.path).toBe('/headers/idempotency-key');
    expect(await count()).toBe(before);
    // Another client's key of the same name is its own.
    expect((await create(other, definition, 'order-3')).status).toBe(201);
    expect(await count()).toBe(before + 1);
    // A request refused (no such list) leaves the key free for the corrected one.
    expect((await create(crm, { ...definition, list: 'missing' }, 'order-4')).status).toBe(400);
    const corrected = await create(crm, definition, 'order-4');
    expect(corrected.status).toBe(201);
    expect(corrected.headers.get('idempotent-replayed')).toBeNull();
    // An unusable key is a 400 naming the header.
    const bad = await create(crm, definition, 'x'.repeat(300));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: Array<{ path: string }> }).errors[0]!.path).toBe(
      '/headers/idempotency-key',
    );
  });

  it('still creates one delivery per request without a key', async () => {
    const before = await count();
    await create(crm, definition);
    await create(crm, definition);
    expect(await count()).toBe(before + 2);
  });

  it('creates one webhook subscription per Idempotency-Key: a retry never doubles every event sent', async () => {
    const subscribe = (body: object, key: string) =>
      fetch(`${url}/api/v1/webhooks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      });
    const subscriptions = async () =>
      (await herald.store.db.selectFrom('webhook_subscriptions').select('id').execute()).length;
    const hook = { url: 'https://hooks.example.com/herald', events: ['delivery.state'] };
    const before = await subscriptions();
    // The client chose the secret: the retry answers as the first did.
    const own = { ...hook, secret: 'a-secret-of-the-client-0123' };
    const first = await subscribe(own, 'hook-1');
    expect(first.status).toBe(201);
    const retry = await subscribe(own, 'hook-1');
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    const [a, b] = [(await first.json()) as { id: number }, (await retry.json()) as { id: number; secret: string }];
    expect(b).toMatchObject({ id: a.id, secret: own.secret, url: hook.url });
    // A generated secret was shown once: the retry names the subscription and how to get a new secret.
    expect((await subscribe(hook, 'hook-2')).status).toBe(201);
    const again = await subscribe(hook, 'hook-2');
    expect(again.status).toBe(409);
    expect(((await again.json()) as { detail: string }).detail).toContain('rotate-secret');
    expect(await subscriptions()).toBe(before + 2);
  });
});
