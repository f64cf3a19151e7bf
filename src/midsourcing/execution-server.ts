import type { Server } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { systemClock, type Clock } from '../common/clock.ts';
import { guardConnections, type ConnectionRefusal } from '../common/connection-guard.ts';
import { addressMatcher } from '../common/connection-limits.ts';
import { describeError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { Store } from '../store/database.ts';
import type { MidsourcingConfig } from './config.ts';
import { createExecutionService, type Served } from './execution-service.ts';
import { decodePart } from './part-codec.ts';
import { recordSeenRequest } from './seen-request-store.ts';
import {
  createNonceCache,
  nonceKey,
  replayedMessage,
  signAnswer,
  verifyRequest,
  verifyRequestHead,
  type NonceCache,
} from './signing.ts';
import { midError, midHeaders, midPathPrefix, statusOfMidError, type MidErrorBody, type MidErrorCode } from './wire.ts';

// The execution instance's HTTP server (role `mid`). Every request is signed by a configured
// peer; bodies are kept as raw bytes so the signature covers exactly what was sent. Before a byte
// of a body is read, the head signature (peer, timestamp, nonce, declared Content-Length) is
// checked and the declared length is reserved from a budget of bytes not yet verified, so neither
// a stranger nor a crowd of slow uploads can make the process buffer more than that budget.

export interface ExecutionServerOptions {
  store: Store;
  config: MidsourcingConfig;
  clock?: Clock;
  logger?: Logger;
  nonces?: NonceCache;
  /** Each part append received: decoding and storing time, answered ok or not, or aborted by the
   *  sender before the answer (its timeout) — the metrics registry. */
  onPartAppend?(seconds: number, outcome: 'ok' | 'error' | 'timeout'): void;
  /** Each connection closed as it came, over listen.maxConnections or maxConnectionsPerClient (the metrics registry). */
  onConnectionRefused?(reason: ConnectionRefusal): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    midPeer?: string;
    /** Bytes of this request's body reserved from the unverified budget, until verified or answered. */
    midReserved?: number;
    /** The peer's nonce of this request while its body is being received (see `receiving`). */
    midReceiving?: string;
    /** Closes the connection when the body is not in by then (see `bodyDeadlineMs`). */
    midBodyDeadline?: NodeJS.Timeout;
    /** When the head was checked: the body's signature is checked against that time (the replay
     *  window bounds when a request was sent; how long its body takes is bounded by `bodyDeadlineMs`). */
    midHeadAt?: number;
  }
}

/** A kind of request refused before its body is logged at most this often (execution-server.ts). */
const rejectionLogEveryMs = 60_000;

function sendError(reply: FastifyReply, code: MidErrorCode, message: string): FastifyReply {
  const body: MidErrorBody = midError(code, message);
  return reply.code(statusOfMidError(code)).send(body);
}

function sendServed<T>(reply: FastifyReply, served: Served<T>): FastifyReply {
  if (served.ok) return reply.code(200).send(served.value);
  return reply.code(statusOfMidError(served.error.error.code)).send(served.error);
}

function parseJson(body: unknown): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : '') };
  } catch {
    return { ok: false };
  }
}

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  const n = Number(value);
  return n > 0 ? n : undefined;
}

export function buildExecutionApp(options: ExecutionServerOptions): FastifyInstance {
  const { store, config } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const nonces = options.nonces ?? createNonceCache();
  const secrets = new Map(config.peers.map((peer) => [peer.name, peer.secret]));
  const service = createExecutionService(store);
  const app = Fastify({ logger: false, bodyLimit: config.maxBodyBytes, return503OnClosing: true });
  // A body still not received when its sender has given up on the request (requestTimeoutMs), with
  // a margin, is not waited for: the connection is closed and its share of the budget given back,
  // so a vanished peer, or a copied head whose body never follows, cannot hold it. (Node's own
  // requestTimeout stops counting once the head is in.)
  const bodyDeadlineMs = 2 * config.requestTimeoutMs;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, _request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return sendError(reply, 'BODY_TOO_LARGE', `request body is over ${config.maxBodyBytes} bytes`);
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)
      return sendError(reply, 'INVALID_BODY', error.message);
    logger.error({ err: describeError(error) }, 'mid-sourcing request failed');
    // Database trouble is transient from the client's point of view: it retries with backoff.
    return sendError(
      reply,
      'UNAVAILABLE',
      `execution instance could not process the request: ${describeError(error).slice(0, 300)}`,
    );
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`),
  );

  // Before the body is read: the head signature proves the peer and covers the declared length, so
  // an unknown peer, a bad signature (the same answer for both) or a stale timestamp is refused
  // without buffering anything, and a body is read only within the unverified-bytes budget.
  let unverifiedBytes = 0;
  // The nonces of the requests whose bodies are being received: a copy of a head seen on the wire
  // (its signature is valid until the window ends) cannot hold a second reservation beside the
  // original, nor one after it (the nonce cache then knows the nonce).
  const receiving = new Set<string>();
  const release = (request: FastifyRequest) => {
    unverifiedBytes -= request.midReserved ?? 0;
    request.midReserved = 0;
    if (request.midReceiving !== undefined) receiving.delete(request.midReceiving);
    request.midReceiving = undefined;
    clearTimeout(request.midBodyDeadline);
  };
  // Anyone reaching the port can be refused here as fast as it opens connections: one warning per
  // code and peer entry (names nobody has count as one) a minute, with the count of the others, and
  // a bounded url, so a stranger cannot fill the disk this process shares with the MTA.
  const rejections = new Map<string, { loggedAt: number; since: number }>();
  const logRejectedHead = (
    request: FastifyRequest,
    code: MidErrorCode,
    peer: string | undefined,
    extra: Record<string, unknown> = {},
  ) => {
    const key = `${code}\n${peer !== undefined && secrets.has(peer) ? peer : ''}`;
    const now = clock.now();
    const seen = rejections.get(key);
    if (seen !== undefined && now - seen.loggedAt < rejectionLogEveryMs) {
      seen.since++;
      return;
    }
    rejections.set(key, { loggedAt: now, since: 0 });
    logger.warn(
      {
        code,
        url: request.url.slice(0, 200),
        peer,
        ...extra,
        ...(seen !== undefined && { alsoRefused: seen.since }),
      },
      'mid-sourcing request rejected before its body',
    );
  };
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    request.midHeadAt = clock.now();
    const head = verifyRequestHead({
      method: request.method,
      path: request.url,
      headers: request.headers,
      now: request.midHeadAt,
      windowMs: config.replayWindowSeconds * 1000,
      maxBodyBytes: config.maxBodyBytes,
      secretOf: (peer) => secrets.get(peer),
    });
    if (!head.ok) {
      // The answer says nothing of why (peer names cannot be probed); this instance's operator is told.
      const claimed = request.headers[midHeaders.peer];
      const peer = typeof claimed === 'string' ? claimed.slice(0, 100) : undefined;
      logRejectedHead(request, head.code, peer, {
        ...(head.code === 'BAD_SIGNATURE' &&
          peer !== undefined && {
            hint: secrets.has(peer)
              ? `the signature does not match: the secret of midsourcing.peers "${peer}" here differs from the one that instance signs with`
              : `no midsourcing.peers entry is named "${peer}" here (known: ${[...secrets.keys()].join(', ') || 'none'})`,
          }),
      });
      // The body is not read: the connection goes with the answer.
      reply.header('connection', 'close');
      return sendError(reply, head.code, head.message);
    }
    const nonce = nonceKey(head.peer, head.nonce);
    if (receiving.has(nonce) || nonces.has(nonce, clock.now())) {
      logRejectedHead(request, 'REPLAYED', head.peer);
      reply.header('connection', 'close');
      return sendError(reply, 'REPLAYED', replayedMessage);
    }
    // One request may always proceed alone, so a body as large as maxBodyBytes is never starved.
    if (unverifiedBytes > 0 && unverifiedBytes + head.contentLength > config.maxUnverifiedBytesInFlight) {
      reply.header('connection', 'close');
      return sendError(
        reply,
        'UNAVAILABLE',
        `more than ${config.maxUnverifiedBytesInFlight} bytes of request bodies are being received; retry`,
      );
    }
    unverifiedBytes += head.contentLength;
    request.midReserved = head.contentLength;
    receiving.add(nonce);
    request.midReceiving = nonce;
    request.midBodyDeadline = setTimeout(() => {
      logger.warn(
        { url: request.url, peer: head.peer, waitedMs: bodyDeadlineMs },
        'mid-sourcing request body not received in time; connection closed',
      );
      release(request);
      request.raw.destroy();
    }, bodyDeadlineMs).unref();
  });
  app.addHook('onResponse', async (request: FastifyRequest) => release(request));
  app.addHook('onRequestAbort', async (request: FastifyRequest) => {
    release(request);
    if (request.routeOptions.url?.endsWith('/parts/:n')) options.onPartAppend?.(0, 'timeout');
  });

  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    release(request);
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const verdict = verifyRequest({
      method: request.method,
      path: request.url,
      headers: request.headers,
      body,
      now: request.midHeadAt ?? clock.now(),
      windowMs: config.replayWindowSeconds * 1000,
      secretOf: (peer) => secrets.get(peer),
      nonces,
    });
    if (!verdict.ok) {
      logger.warn(
        { code: verdict.code, url: request.url, peer: request.headers[midHeaders.peer] },
        'mid-sourcing request rejected',
      );
      return sendError(reply, verdict.code, verdict.message);
    }
    // The authoritative check, after the signature (an unauthenticated caller writes nothing): one
    // atomic insert shared by every execution process on the database, kept across restarts.
    if (!(await recordSeenRequest(store, verdict.peer, verdict.nonce, clock.now()))) {
      logger.warn({ code: 'REPLAYED', url: request.url, peer: verdict.peer }, 'mid-sourcing request rejected');
      return sendError(reply, 'REPLAYED', replayedMessage);
    }
    request.midPeer = verdict.peer;
  });

  // Every answer to an authenticated request is signed (signing.ts): the marketing side believes
  // nothing unsigned, so a proxy or another service answering on this url cannot pass for it. An
  // answer to a request not authenticated is not signed: nothing proves who asked.
  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const peer = request.midPeer;
    const secret = peer === undefined ? undefined : secrets.get(peer);
    if (peer === undefined || secret === undefined) return payload;
    // Answers are JSON text; anything else (a stream) would go unsigned, and be refused over there.
    if (payload !== null && payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload))
      return payload;
    const nonce = request.headers[midHeaders.nonce];
    reply.header(
      midHeaders.answerSignature,
      signAnswer({
        secret,
        peer,
        method: request.method,
        path: request.url,
        nonce: typeof nonce === 'string' ? nonce : '',
        status: reply.statusCode,
        body: payload ?? '',
      }),
    );
    return payload;
  });

  type IdParams = { id: string };
  const remoteIdOf = (request: FastifyRequest<{ Params: IdParams }>) => positiveInt(request.params.id);

  app.post(`${midPathPrefix}/deliveries`, async (request, reply) => {
    const json = parseJson(request.body);
    if (!json.ok) return sendError(reply, 'INVALID_BODY', 'submit: body is not JSON');
    return sendServed(reply, await service.submit(request.midPeer!, json.value, clock.now()));
  });

  app.post<{ Params: IdParams & { n: string } }>(`${midPathPrefix}/deliveries/:id/parts/:n`, async (request, reply) => {
    const started = performance.now();
    const answered = await appendPart(request, reply as FastifyReply);
    options.onPartAppend?.((performance.now() - started) / 1000, reply.statusCode === 200 ? 'ok' : 'error');
    return answered;
  });

  async function appendPart(
    request: FastifyRequest<{ Params: IdParams & { n: string } }>,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const remoteId = remoteIdOf(request);
    const part = positiveInt(request.params.n);
    if (remoteId === undefined || part === undefined)
      return sendError(reply, 'INVALID_BODY', 'delivery id and part number must be positive integers');
    const gzipped = request.headers['content-encoding'] === 'gzip';
    const decoded = await decodePart(part, request.body as Buffer, gzipped, config.maxPartBytes);
    if (!decoded.ok) return sendError(reply, decoded.code, decoded.message);
    const announced = request.headers[midHeaders.partKey];
    if (announced !== undefined && announced !== decoded.key)
      return sendError(reply, 'INVALID_BODY', `part ${part}: ${midHeaders.partKey} does not match the body`);
    return sendServed(
      reply,
      await service.appendPart(request.midPeer!, remoteId, part, decoded.key, decoded.lines, clock.now()),
    );
  }

  app.post<{ Params: IdParams }>(`${midPathPrefix}/deliveries/:id/finalize`, async (request, reply) => {
    const remoteId = remoteIdOf(request);
    if (remoteId === undefined) return sendError(reply, 'INVALID_BODY', 'delivery id must be a positive integer');
    const json = parseJson(request.body);
    if (!json.ok) return sendError(reply, 'INVALID_BODY', 'finalize: body is not JSON');
    return sendServed(reply, await service.finalize(request.midPeer!, remoteId, json.value, clock.now()));
  });

  app.get<{ Params: IdParams; Querystring: { cursor?: string; limit?: string } }>(
    `${midPathPrefix}/deliveries/:id/logs`,
    async (request, reply) => {
      const remoteId = remoteIdOf(request);
      const cursor = request.query.cursor === '0' ? 0 : positiveInt(request.query.cursor ?? '0');
      const limit = Math.min(positiveInt(request.query.limit ?? String(config.logsPageSize)) ?? 0, 100_000);
      if (remoteId === undefined || cursor === undefined || limit === 0)
        return sendError(reply, 'INVALID_BODY', 'logs: id, cursor (≥ 0) and limit (1..100000) must be integers');
      return sendServed(reply, await service.logs(request.midPeer!, remoteId, cursor, limit, clock.now()));
    },
  );

  app.post<{ Params: IdParams }>(`${midPathPrefix}/deliveries/:id/state`, async (request, reply) => {
    const remoteId = remoteIdOf(request);
    if (remoteId === undefined) return sendError(reply, 'INVALID_BODY', 'delivery id must be a positive integer');
    const json = parseJson(request.body);
    if (!json.ok) return sendError(reply, 'INVALID_BODY', 'state: body is not JSON');
    return sendServed(reply, await service.changeState(request.midPeer!, remoteId, json.value, clock.now()));
  });

  app.get<{ Params: IdParams }>(`${midPathPrefix}/deliveries/:id/counters`, async (request, reply) => {
    const remoteId = remoteIdOf(request);
    if (remoteId === undefined) return sendError(reply, 'INVALID_BODY', 'delivery id must be a positive integer');
    return sendServed(reply, await service.counters(request.midPeer!, remoteId, clock.now()));
  });

  return app;
}

export interface ExecutionServer {
  url: string;
  /** The listening server (its connections: tests, and whoever counts them). */
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startExecutionServer(
  options: ExecutionServerOptions & { host?: string; port?: number },
): Promise<ExecutionServer> {
  const app = buildExecutionApp(options);
  const listen = options.config.listen;
  guardConnections(app.server, {
    name: 'mid',
    configSection: 'midsourcing.listen',
    limits: listen,
    uncapped: addressMatcher(listen.proxies),
    logger: options.logger ?? silentLogger,
    ...(options.clock && { clock: options.clock }),
    ...(options.onConnectionRefused && { onRefused: options.onConnectionRefused }),
  });
  await app.listen({
    host: options.host ?? options.config.listen.host,
    port: options.port ?? options.config.listen.port,
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const host = options.host ?? options.config.listen.host;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    server: app.server,
    close: () => app.close(),
  };
}
