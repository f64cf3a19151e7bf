import { gzipSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { randomId } from '../src/common/ids.ts';
import { defaultMidsourcingConfig, type MidsourcingConfig } from '../src/midsourcing/config.ts';
import { buildExecutionApp, startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import { encodePart } from '../src/midsourcing/part-codec.ts';
import { signRequest } from '../src/midsourcing/signing.ts';
import { midPaths, type PartLine } from '../src/midsourcing/wire.ts';
import { describeEachDialect } from './support/databases.ts';
import { midSubmitRequest } from './support/mid-submit.ts';

// The execution server's guards and idempotency, through the Fastify app without a port.

const secrets = {
  'marketing-1': 'first-marketing-secret-0123456789',
  'marketing-2': 'second-marketing-secret-012345678',
};
const clock = manualClock(Date.UTC(2026, 5, 1, 12));

describeEachDialect('mid-sourcing execution server', (context) => {
  const config: MidsourcingConfig = {
    ...defaultMidsourcingConfig(),
    mode: 'execution',
    maxBodyBytes: 64 * 1024,
    maxPartBytes: 128 * 1024,
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
    options: {
      peer?: keyof typeof secrets;
      secret?: string;
      at?: number;
      nonce?: string;
      headers?: Record<string, string>;
    } = {},
  ) {
    const peer = options.peer ?? 'marketing-1';
    const signed = signRequest({
      peer,
      secret: options.secret ?? secrets[peer],
      method,
      path,
      body: body ?? Buffer.alloc(0),
      now: options.at ?? clock.now(),
      nonce: options.nonce ?? randomId(16),
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
      email: `u${from + i}.${context.dialect}@accept.test`,
      domain: 'accept.test',
      data: '{}',
    }));
  const gzipHeaders = (key: string) => ({ 'content-encoding': 'gzip', 'x-herald-part-key': key });

  it('submits idempotently per peer and marketing delivery id', async () => {
    const first = await send('POST', midPaths.submit(), json(midSubmitRequest(101)));
    const again = await send('POST', midPaths.submit(), json(midSubmitRequest(101)));
    const otherPeer = await send('POST', midPaths.submit(), json(midSubmitRequest(101)), { peer: 'marketing-2' });
    expect(first.statusCode).toBe(200);
    expect(again.json().remoteId).toBe(first.json().remoteId);
    expect(otherPeer.json().remoteId).not.toBe(first.json().remoteId);
    expect(first.json()).toMatchObject({ state: 'preparing', partsReceived: 0 });
  });

  it('acknowledges a duplicate part without inserting it again; other content under the same number is a conflict', async () => {
    const remoteId = (await send('POST', midPaths.submit(), json(midSubmitRequest(102)))).json().remoteId as number;
    const part = await encodePart(1, lines(1, 2));
    const first = await send('POST', midPaths.part(remoteId, 1), part.body, { headers: gzipHeaders(part.key) });
    const duplicate = await send('POST', midPaths.part(remoteId, 1), part.body, { headers: gzipHeaders(part.key) });
    expect(first.json()).toEqual({ part: 1, recipients: 2, duplicate: false });
    expect(duplicate.json()).toEqual({ part: 1, recipients: 2, duplicate: true });
    const other = await encodePart(1, lines(50, 2));
    const conflict = await send('POST', midPaths.part(remoteId, 1), other.body, { headers: gzipHeaders(other.key) });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json().error).toMatchObject({ code: 'PART_CONFLICT', retryable: false });
    const count = await context
      .store()
      .db.selectFrom('delivery_logs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('delivery_id', '=', remoteId)
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(2);

    const early = await send('POST', midPaths.finalize(remoteId), json({ parts: 2, recipients: 4 }));
    expect(early.json().error).toMatchObject({ code: 'PARTS_MISSING', retryable: false });
    const second = await encodePart(2, lines(3, 2));
    await send('POST', midPaths.part(remoteId, 2), second.body, { headers: gzipHeaders(second.key) });
    const finalized = await send('POST', midPaths.finalize(remoteId), json({ parts: 2, recipients: 4 }));
    expect(finalized.json()).toMatchObject({ state: 'in_progress', validUntil: clock.now() + 3_600_000 });
    // A late retry of a part that made it is still acknowledged; a new part is refused.
    expect(
      (await send('POST', midPaths.part(remoteId, 2), second.body, { headers: gzipHeaders(second.key) })).json(),
    ).toMatchObject({ duplicate: true });
    const counters = await send('GET', midPaths.counters(remoteId), undefined);
    expect(counters.json()).toMatchObject({ state: 'in_progress', total: 4, pending: 4 });
  });

  it('inserts a recipient present in two parts once; a case variant stays (the marketing side folded case already)', async () => {
    const remoteId = (await send('POST', midPaths.submit(), json(midSubmitRequest(103)))).json().remoteId as number;
    const first = await encodePart(1, lines(1, 2));
    const [again] = lines(2, 1);
    const variant = {
      ...lines(1, 1)[0]!,
      id: 9,
      email: lines(1, 1)[0]!.email.toUpperCase().replace('@ACCEPT.TEST', '@accept.test'),
    };
    const second = await encodePart(2, [again!, variant]);
    await send('POST', midPaths.part(remoteId, 1), first.body, { headers: gzipHeaders(first.key) });
    const response = await send('POST', midPaths.part(remoteId, 2), second.body, { headers: gzipHeaders(second.key) });
    expect(response.json()).toEqual({ part: 2, recipients: 2, duplicate: false });
    const logs = await context
      .store()
      .db.selectFrom('delivery_logs')
      .select(['email', 'address_key'])
      .where('delivery_id', '=', remoteId)
      .orderBy('id')
      .execute();
    expect(logs.map((log) => log.email)).toEqual([...lines(1, 2).map((line) => line.email), variant.email]);
    expect(logs.every((log) => log.address_key === log.email)).toBe(true);
  });

  it('rejects bad signatures, unknown peers, stale timestamps and replays with typed, non-retryable errors', async () => {
    const body = json(midSubmitRequest(103));
    const wrongSecret = await send('POST', midPaths.submit(), body, { secret: 'not-the-secret-at-all-00000' });
    expect(wrongSecret.statusCode).toBe(401);
    expect(wrongSecret.json().error).toMatchObject({ code: 'BAD_SIGNATURE', retryable: false });
    const stale = await send('POST', midPaths.submit(), body, { at: clock.now() - 6 * 60_000 });
    expect(stale.json().error.code).toBe('STALE_TIMESTAMP');
    const nonce = randomId(16);
    expect((await send('POST', midPaths.submit(), body, { nonce })).statusCode).toBe(200);
    const replay = await send('POST', midPaths.submit(), body, { nonce });
    expect(replay.json().error).toMatchObject({ code: 'REPLAYED', retryable: false });
    const unsigned = await app.inject({
      method: 'POST',
      url: midPaths.submit(),
      payload: body,
      headers: { 'content-type': 'application/json' },
    });
    expect(unsigned.json().error.code).toBe('BAD_SIGNATURE');
    const stranger = await app.inject({
      method: 'POST',
      url: midPaths.submit(),
      payload: body,
      headers: {
        ...signRequest({
          peer: 'stranger',
          secret: 'stranger-secret-0123456789',
          method: 'POST',
          path: midPaths.submit(),
          body,
          now: clock.now(),
          nonce: randomId(16),
        }),
        'content-type': 'application/json',
      },
    });
    // An unknown peer gets exactly the answer a bad signature gets: peer names cannot be probed.
    expect(stranger.statusCode).toBe(wrongSecret.statusCode);
    expect(stranger.json()).toEqual(wrongSecret.json());
  });

  it('validates every line of a part (address, domain, data) and refuses the whole part naming the line; nothing written', async () => {
    const remoteId = (await send('POST', midPaths.submit(), json(midSubmitRequest(105, 1)))).json().remoteId as number;
    const good = lines(500, 3);
    const cases: Array<[Partial<PartLine>, RegExp]> = [
      [{ email: 'not an address' }, /"email" .* is not a valid address/],
      [{ email: 'a@b@accept.test' }, /"email" .* is not a valid address/],
      [{ domain: 'victim.test' }, /"domain" must be the address's domain "accept\.test"/],
      [{ domain: 'ACCEPT.TEST' }, /"domain" must be the address's domain/],
      [{ data: '[1,2]' }, /"data" must be a JSON object/],
      [{ data: '"text"' }, /"data" must be a JSON object/],
      [{ data: 'null' }, /"data" must be a JSON object/],
      [{ data: '{"a":' }, /"data" is not JSON/],
      [{ data: `{"a":"${'x'.repeat(70_000)}"}` }, /"data" must be JSON text of at most/],
    ];
    for (const [change, message] of cases) {
      const bad = [good[0]!, { ...good[1]!, ...change }, good[2]!];
      const ndjson = bad.map((line) => JSON.stringify(line)).join('\n');
      const body = gzipSync(Buffer.from(ndjson));
      const refused = await send('POST', midPaths.part(remoteId, 1), body, { headers: { 'content-encoding': 'gzip' } });
      expect(refused.json().error, JSON.stringify(change).slice(0, 80)).toMatchObject({ code: 'INVALID_BODY' });
      expect(refused.json().error.message).toContain('part 1, line 2');
      expect(refused.json().error.message).toMatch(message);
    }
    const counters = await send('GET', midPaths.counters(remoteId), undefined);
    expect(counters.json()).toMatchObject({ total: 0 });
    // The same part with its lines intact is taken.
    const part = await encodePart(1, good);
    const taken = await send('POST', midPaths.part(remoteId, 1), part.body, { headers: gzipHeaders(part.key) });
    expect(taken.json()).toMatchObject({ part: 1, recipients: 3, duplicate: false });
  });

  describe('over a real socket', () => {
    let server: ExecutionServer;
    const budgetConfig: MidsourcingConfig = {
      ...config,
      maxBodyBytes: 32 * 1024 * 1024,
      maxUnverifiedBytesInFlight: 48 * 1024 * 1024,
    };
    beforeAll(async () => {
      server = await startExecutionServer({
        store: context.store(),
        config: budgetConfig,
        clock,
        host: '127.0.0.1',
        port: 0,
      });
    });
    afterAll(async () => {
      await server?.close();
    });

    /**
     * Starts a POST declaring `length` bytes and writes only `sent` of them; resolves with the answer
     * if the server answers before the rest of the body, rejects after `deadlineMs` otherwise.
     */
    function partialPost(headers: Record<string, string>, length: number, sent: number, deadlineMs = 5_000) {
      const request = httpRequest({
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: midPaths.submit(),
        headers: { ...headers, 'content-length': String(length), 'content-type': 'application/json' },
      });
      const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const timer = setTimeout(() => {
          request.destroy();
          reject(new Error(`no answer within ${deadlineMs} ms while the body was still being sent`));
        }, deadlineMs);
        request.on('response', (response) => {
          let text = '';
          response.on('data', (chunk: Buffer) => {
            text += chunk.toString('utf8');
          });
          response.on('end', () => {
            clearTimeout(timer);
            resolve({ status: response.statusCode ?? 0, body: text });
          });
        });
        request.on('error', () => {});
        request.on('close', () => {
          clearTimeout(timer);
          reject(new Error('closed without an answer'));
        });
      });
      request.write(Buffer.alloc(sent, 0x20));
      return { request, answer };
    }

    const signedHead = (length: number, overrides: { peer?: string; secret?: string } = {}) => {
      const headers = signRequest({
        peer: overrides.peer ?? 'marketing-1',
        secret: overrides.secret ?? secrets['marketing-1'],
        method: 'POST',
        path: midPaths.submit(),
        body: Buffer.alloc(length, 0x20),
        now: clock.now(),
        nonce: randomId(16),
      });
      return headers as unknown as Record<string, string>;
    };

    it('refuses a 31 MiB body with a known peer name but no valid signature before reading it', async () => {
      const length = 31 * 1024 * 1024;
      const forged = {
        ...signedHead(length),
        'x-herald-head-signature': 'f'.repeat(64),
        'x-herald-signature': 'f'.repeat(64),
      };
      const { request, answer } = partialPost(forged, length, 64 * 1024);
      const answered = await answer;
      request.destroy();
      expect(answered.status).toBe(401);
      expect(JSON.parse(answered.body).error.code).toBe('BAD_SIGNATURE');
      // The same answer for a peer name that does not exist.
      const stranger = partialPost(
        signedHead(length, { peer: 'stranger', secret: 'stranger-secret-0123456789' }),
        length,
        1024,
      );
      const strangerAnswer = await stranger.answer;
      stranger.request.destroy();
      expect(strangerAnswer).toEqual(answered);
    });

    it('bounds the bytes of bodies received but not yet verified: a second large upload waits (503, retryable)', async () => {
      const length = 30 * 1024 * 1024;
      const first = partialPost(signedHead(length), length, 1024, 60_000);
      // The first upload holds 30 MiB of the 48 MiB budget while it trickles.
      const second = partialPost(signedHead(length), length, 1024);
      const refused = await second.answer;
      second.request.destroy();
      expect(refused.status).toBe(503);
      expect(JSON.parse(refused.body).error).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
      // A small request still fits beside the first.
      const small = await send('POST', midPaths.submit(), json(midSubmitRequest(106)));
      expect(small.statusCode).toBe(200);
      first.request.destroy();
      await first.answer.catch(() => undefined);
    });

    it('refuses a copy of a head seen on the wire before its body, during the original upload and after it', async () => {
      const body = json(midSubmitRequest(107));
      const headers = signRequest({
        peer: 'marketing-1',
        secret: secrets['marketing-1'],
        method: 'POST',
        path: midPaths.submit(),
        body,
        now: clock.now(),
        nonce: randomId(16),
      }) as unknown as Record<string, string>;
      const original = partialPost(headers, body.length, 0);
      original.request.write(body.subarray(0, 10));
      // The original's body is still coming: a copy of its head gets no share of the budget.
      const copy = partialPost(headers, body.length, 0);
      const refused = await copy.answer;
      copy.request.destroy();
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body).error.code).toBe('REPLAYED');
      original.request.end(body.subarray(10));
      expect((await original.answer).status).toBe(200);
      const late = partialPost(headers, body.length, 0);
      const lateAnswer = await late.answer;
      late.request.destroy();
      expect(JSON.parse(lateAnswer.body).error.code).toBe('REPLAYED');
    });
  });

  it('closes an upload whose body stops coming, and gives its share of the budget back', async () => {
    const length = 30 * 1024 * 1024;
    const timeoutConfig: MidsourcingConfig = {
      ...config,
      maxBodyBytes: 32 * 1024 * 1024,
      maxUnverifiedBytesInFlight: 48 * 1024 * 1024,
      // The server stops waiting for a body after twice this.
      requestTimeoutMs: 500,
    };
    const server = await startExecutionServer({
      store: context.store(),
      config: timeoutConfig,
      clock,
      host: '127.0.0.1',
      port: 0,
    });
    const stalled = () => {
      const request = httpRequest({
        host: '127.0.0.1',
        port: server.port,
        method: 'POST',
        path: midPaths.submit(),
        headers: {
          ...(signRequest({
            peer: 'marketing-1',
            secret: secrets['marketing-1'],
            method: 'POST',
            path: midPaths.submit(),
            body: Buffer.alloc(length),
            now: clock.now(),
            nonce: randomId(16),
          }) as unknown as Record<string, string>),
          'content-length': String(length),
        },
      });
      request.on('error', () => {});
      request.write(Buffer.alloc(1024));
      return new Promise<number>((resolve) => {
        request.on('response', (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        request.on('close', () => resolve(0));
      });
    };
    try {
      // Closed without an answer (0) once the server stops waiting for the rest of the body.
      expect(await stalled()).toBe(0);
      // Had the first kept its 30 MiB, this one would be refused at once (503) instead.
      expect(await stalled()).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('limits bodies before and after decompression and names the bad line', async () => {
    const remoteId = (await send('POST', midPaths.submit(), json(midSubmitRequest(104)))).json().remoteId as number;
    const huge = await send('POST', midPaths.part(remoteId, 1), Buffer.alloc(70 * 1024, 1), {
      headers: { 'content-encoding': 'gzip' },
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error).toMatchObject({ code: 'BODY_TOO_LARGE', retryable: false });
    const bomb = gzipSync(Buffer.alloc(1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const exploded = await send('POST', midPaths.part(remoteId, 1), bomb, { headers: { 'content-encoding': 'gzip' } });
    expect(exploded.json().error.code).toBe('BODY_TOO_LARGE');
    const bad = gzipSync(Buffer.from(`${JSON.stringify(lines(1, 1)[0])}\n{"id":2,"email":"x"}\n`));
    const invalid = await send('POST', midPaths.part(remoteId, 1), bad, { headers: { 'content-encoding': 'gzip' } });
    expect(invalid.json().error).toMatchObject({
      code: 'INVALID_BODY',
      message: expect.stringContaining('part 1, line 2'),
    });
    const foreign = await send('GET', midPaths.counters(remoteId), undefined, { peer: 'marketing-2' });
    expect(foreign.json().error.code).toBe('NOT_FOUND');
  });
});
