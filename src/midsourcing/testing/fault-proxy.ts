import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { midHeaders } from '../wire.ts';

// An HTTP proxy for tests and drills that sits between a marketing and an execution instance and
// injects the faults a real network and a real gateway produce, by plan:
//   pass            forward as is
//   delay(ms)       forward, hold the response ms before relaying it (past the client's timeout)
//   drop-before     reset the client connection without forwarding (the request never arrived)
//   drop-after      forward, then reset the client connection (processed, but the ack is lost)
//   status(n)       answer n without forwarding (e.g. 408 from a gateway); optionally with a body
//                   of its own (a forged problem+json), never signed by the execution instance
//   status-after(n) forward, then answer n instead of the real response (e.g. 504)
//   hold(until)     forward only once `until` settles (a request stuck on the way, arriving late,
//                   e.g. together with the client's retry)
//   unsigned        forward, relay the answer without its answer signature (an execution
//                   instance older than answer signing)
// The path and body are relayed untouched, so request signatures stay valid.

export type Fault =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number }
  | { kind: 'drop-before' }
  | { kind: 'drop-after' }
  | { kind: 'status'; status: number; body?: string; contentType?: string }
  | { kind: 'status-after'; status: number }
  | { kind: 'unsigned' }
  | { kind: 'hold'; until: Promise<void> };

export interface ProxiedRequest {
  method: string;
  path: string;
  /** 1-based count of requests seen on this path (method + path without query). */
  attempt: number;
  seq: number;
}

export interface FaultProxy {
  url: string;
  port: number;
  /** Replaces the plan; the default plan passes everything. */
  setPlan(plan: (request: ProxiedRequest) => Fault): void;
  setUpstream(url: string): void;
  /** Faults applied so far, by kind. */
  injected(): Record<Fault['kind'], number>;
  close(): Promise<void>;
}

export async function startFaultProxy(upstreamUrl: string): Promise<FaultProxy> {
  let upstream = new URL(upstreamUrl);
  let plan: (request: ProxiedRequest) => Fault = () => ({ kind: 'pass' });
  const attempts = new Map<string, number>();
  const counts: Record<Fault['kind'], number> = {
    pass: 0,
    delay: 0,
    'drop-before': 0,
    'drop-after': 0,
    status: 0,
    'status-after': 0,
    unsigned: 0,
    hold: 0,
  };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let seq = 0;

  const forward = (req: IncomingMessage, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer } | undefined>((resolve) => {
      const headers = { ...req.headers, host: upstream.host, connection: 'keep-alive' };
      const out = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', () => resolve(undefined));
        },
      );
      out.on('error', () => resolve(undefined));
      out.end(body);
    });

  const relay = (
    res: ServerResponse,
    answer: { status: number; headers: IncomingHttpHeaders; body: Buffer },
    stripSignature = false,
  ) => {
    if (res.destroyed) return;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(answer.headers)) {
      if (
        typeof value === 'string' &&
        !['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(name) &&
        !(stripSignature && name === midHeaders.answerSignature)
      )
        headers[name] = value;
    }
    res.writeHead(answer.status, { ...headers, 'content-length': String(answer.body.length) });
    res.end(answer.body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const key = `${req.method} ${(req.url ?? '').split('?')[0]}`;
        const attempt = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, attempt);
        const fault = plan({ method: req.method ?? 'GET', path: req.url ?? '/', attempt, seq: ++seq });
        counts[fault.kind]++;
        if (fault.kind === 'drop-before') return req.socket.destroy();
        if (fault.kind === 'status') {
          res.writeHead(fault.status, { 'content-type': fault.contentType ?? 'text/plain' });
          return res.end(fault.body ?? `proxy: injected ${fault.status}\n`);
        }
        if (fault.kind === 'hold') await fault.until;
        const answer = await forward(req, body);
        // An unreachable upstream (restarting execution instance) looks like a reset to the client.
        if (!answer || fault.kind === 'drop-after') return req.socket.destroy();
        if (fault.kind === 'status-after') {
          res.writeHead(fault.status, { 'content-type': 'text/plain' });
          return res.end(`proxy: upstream answered ${answer.status}, injected ${fault.status}\n`);
        }
        if (fault.kind === 'delay') {
          const timer = setTimeout(() => {
            timers.delete(timer);
            relay(res, answer);
          }, fault.ms);
          timers.add(timer);
          return;
        }
        relay(res, answer, fault.kind === 'unsigned');
      })();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setPlan(next) {
      plan = next;
    },
    setUpstream(url) {
      upstream = new URL(url);
    },
    injected: () => ({ ...counts }),
    async close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
