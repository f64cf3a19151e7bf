import { beforeAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { randomId } from '../src/common/ids.ts';
import { defaultMidsourcingConfig, type MidsourcingConfig } from '../src/midsourcing/config.ts';
import { buildExecutionApp } from '../src/midsourcing/execution-server.ts';
import { encodePart } from '../src/midsourcing/part-codec.ts';
import { signRequest } from '../src/midsourcing/signing.ts';
import { midPaths, type PartLine } from '../src/midsourcing/wire.ts';
import { listInboundStateChanges, publishLogChanges, readLogChanges } from '../src/midsourcing/inbound-store.ts';
import { describeEachDialect } from './support/databases.ts';
import { midSubmitRequest } from './support/mid-submit.ts';

// The execution side of a forwarded pause / resume / stop, through the Fastify app without a port:
// versions applied once and in order, a change received before finalize held until then.

const secrets = {
  'marketing-1': 'first-marketing-secret-0123456789',
  'marketing-2': 'second-marketing-secret-012345678',
};
const clock = manualClock(Date.UTC(2026, 5, 1, 12));

describeEachDialect('mid-sourcing forwarded state changes', (context) => {
  const config: MidsourcingConfig = {
    ...defaultMidsourcingConfig(),
    mode: 'execution',
    peers: Object.entries(secrets).map(([name, secret]) => ({ name, secret })),
  };
  let app: ReturnType<typeof buildExecutionApp>;
  beforeAll(() => {
    app = buildExecutionApp({ store: context.store(), config, clock });
  });

  function send(
    method: 'GET' | 'POST',
    path: string,
    body: Buffer | undefined,
    options: { peer?: keyof typeof secrets; headers?: Record<string, string> } = {},
  ) {
    const peer = options.peer ?? 'marketing-1';
    const signed = signRequest({
      peer,
      secret: secrets[peer],
      method,
      path,
      body: body ?? Buffer.alloc(0),
      now: clock.now(),
      nonce: randomId(16),
    });
    return app.inject({
      method,
      url: path,
      payload: body,
      headers: { ...signed, 'content-type': 'application/octet-stream', ...options.headers },
    });
  }
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const lines = (from: number, n: number): PartLine[] =>
    Array.from({ length: n }, (_, i) => ({
      id: from + i,
      email: `s${from + i}.${context.dialect}@accept.test`,
      domain: 'accept.test',
      data: '{}',
    }));
  const change = (remoteId: number, state: string, version: number, peer?: keyof typeof secrets) =>
    send('POST', midPaths.state(remoteId), json({ state, version }), { peer });

  async function received(marketingDeliveryId: number, finalize: boolean): Promise<number> {
    const remoteId = (await send('POST', midPaths.submit(), json(midSubmitRequest(marketingDeliveryId, 1, 3)))).json()
      .remoteId as number;
    const part = await encodePart(1, lines(marketingDeliveryId * 10, 3));
    await send('POST', midPaths.part(remoteId, 1), part.body, {
      headers: { 'content-encoding': 'gzip', 'x-herald-part-key': part.key },
    });
    if (finalize)
      expect((await send('POST', midPaths.finalize(remoteId), json({ parts: 1, recipients: 3 }))).json()).toMatchObject(
        { state: 'in_progress' },
      );
    return remoteId;
  }
  const logStatuses = async (remoteId: number) =>
    (
      await context
        .store()
        .db.selectFrom('delivery_logs')
        .select('status')
        .where('delivery_id', '=', remoteId)
        .execute()
    ).map((row) => row.status);

  it('applies each version once, in order: a repeated or older version changes nothing', async () => {
    const remoteId = await received(1, true);
    expect((await change(remoteId, 'paused', 1)).json()).toEqual({ state: 'paused', version: 1, outcome: 'applied' });
    expect((await change(remoteId, 'paused', 1)).json()).toEqual({ state: 'paused', version: 1, outcome: 'duplicate' });
    expect((await change(remoteId, 'in_progress', 2)).json()).toEqual({
      state: 'in_progress',
      version: 2,
      outcome: 'applied',
    });
    // A late copy of the pause (an attempt that timed out on the way) must not pause it again.
    expect((await change(remoteId, 'paused', 1)).json()).toEqual({
      state: 'in_progress',
      version: 2,
      outcome: 'duplicate',
    });
    // A version that skips one (the marketing side paused and resumed before it could forward) is fine.
    expect((await change(remoteId, 'in_progress', 4)).json()).toEqual({
      state: 'in_progress',
      version: 4,
      outcome: 'already',
    });

    const stopped = await change(remoteId, 'stopped', 5);
    expect(stopped.json()).toEqual({ state: 'stopped', version: 5, outcome: 'applied' });
    expect(await logStatuses(remoteId)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    // The cancellations reach the marketing side through the change log like any outcome.
    await publishLogChanges(context.store(), clock.now());
    expect((await readLogChanges(context.store(), remoteId, 0, 10)).changes.map((c) => c.status)).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
    ]);
    expect((await change(remoteId, 'paused', 6)).json()).toEqual({ state: 'stopped', version: 6, outcome: 'final' });

    expect(
      (await listInboundStateChanges(context.store(), remoteId)).map((c) => [
        c.version,
        c.target,
        c.from_state,
        c.outcome,
      ]),
    ).toEqual([
      [1, 'paused', 'in_progress', 'applied'],
      [2, 'in_progress', 'paused', 'applied'],
      [4, 'in_progress', 'in_progress', 'already'],
      [5, 'stopped', 'in_progress', 'applied'],
      [6, 'paused', 'stopped', 'final'],
    ]);
  });

  it('holds a change received before finalize and applies it in the finalize transaction', async () => {
    const remoteId = await received(2, false);
    expect((await change(remoteId, 'paused', 1)).json()).toEqual({ state: 'preparing', version: 1, outcome: 'held' });
    expect((await change(remoteId, 'stopped', 2)).json()).toEqual({ state: 'preparing', version: 2, outcome: 'held' });
    const finalized = await send('POST', midPaths.finalize(remoteId), json({ parts: 1, recipients: 3 }));
    expect(finalized.json()).toMatchObject({ state: 'stopped' });
    expect(await logStatuses(remoteId)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    // A retried finalize changes nothing more.
    expect((await send('POST', midPaths.finalize(remoteId), json({ parts: 1, recipients: 3 }))).json()).toMatchObject({
      state: 'stopped',
    });
    expect(
      (await listInboundStateChanges(context.store(), remoteId)).map((c) => [c.version, c.outcome, c.applied_at]),
    ).toEqual([
      [1, 'superseded', null],
      [2, 'applied', clock.now()],
    ]);

    const pausedBefore = await received(3, false);
    await change(pausedBefore, 'paused', 1);
    expect(
      (await send('POST', midPaths.finalize(pausedBefore), json({ parts: 1, recipients: 3 }))).json(),
    ).toMatchObject({ state: 'paused' });
    expect((await change(pausedBefore, 'in_progress', 2)).json()).toEqual({
      state: 'in_progress',
      version: 2,
      outcome: 'applied',
    });
  });

  it("refuses bad bodies and other peers' deliveries with typed, non-retryable errors", async () => {
    const remoteId = await received(4, true);
    for (const body of [
      { state: 'finished', version: 1 },
      { state: 'paused', version: 0 },
      { state: 'paused' },
      { state: 'paused', version: 1, extra: true },
    ]) {
      const response = await send('POST', midPaths.state(remoteId), json(body));
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toMatchObject({
        code: 'INVALID_BODY',
        retryable: false,
        message: expect.stringContaining('state: '),
      });
    }
    const foreign = await change(remoteId, 'paused', 1, 'marketing-2');
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().error).toMatchObject({ code: 'NOT_FOUND', retryable: false });
    const version = await context
      .store()
      .db.selectFrom('mid_inbound_deliveries')
      .select('state_version')
      .where('delivery_id', '=', remoteId)
      .executeTakeFirstOrThrow();
    expect(Number(version.state_version)).toBe(0);
  });
});
