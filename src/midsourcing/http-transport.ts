import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { maxPartsInFlight } from './config.ts';

// One HTTP exchange with a deadline, its outcome as a value: a response (any status), a timeout,
// or a network failure (reset, refused, ...). Keep-alive sockets are reused across parts.

export type Exchange =
  | { kind: 'response'; status: number; headers: IncomingHttpHeaders; body: Buffer; latencyMs: number }
  | { kind: 'timeout'; latencyMs: number }
  | { kind: 'network'; code: string; message: string; latencyMs: number };

export interface ExchangeRequest {
  url: URL;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
  maxResponseBytes: number;
}

export interface Transport {
  exchange(request: ExchangeRequest): Promise<Exchange>;
  close(): void;
}

/**
 * `maxSockets`: connections per peer at once. Every part in flight has its own: a request waiting
 * for a connection would spend its timeout unsent (and be counted as a timeout, blamed on the link).
 */
export function createHttpTransport(maxSockets = maxPartsInFlight): Transport {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const secureAgent = new HttpsAgent({ keepAlive: true, maxSockets });
  return {
    exchange(request) {
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      return new Promise<Exchange>((resolve) => {
        let settled = false;
        const settle = (value: Exchange) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(value);
        };
        const secure = request.url.protocol === 'https:';
        const headers: Record<string, string> = { ...request.headers };
        if (request.body) headers['content-length'] = String(request.body.length);
        const req = (secure ? httpsRequest : httpRequest)(
          request.url,
          { method: request.method, headers, agent: secure ? secureAgent : agent },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > request.maxResponseBytes) {
                req.destroy();
                settle({
                  kind: 'network',
                  code: 'RESPONSE_TOO_LARGE',
                  message: `response over ${request.maxResponseBytes} bytes`,
                  latencyMs: elapsed(),
                });
                return;
              }
              chunks.push(chunk);
            });
            res.on('end', () =>
              settle({
                kind: 'response',
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks),
                latencyMs: elapsed(),
              }),
            );
            res.on('error', (error: NodeJS.ErrnoException) =>
              settle({ kind: 'network', code: error.code ?? 'ERROR', message: error.message, latencyMs: elapsed() }),
            );
            res.on('aborted', () =>
              settle({ kind: 'network', code: 'ECONNRESET', message: 'response aborted', latencyMs: elapsed() }),
            );
          },
        );
        // The deadline covers the whole exchange (connect, upload, wait, download).
        const timer = setTimeout(() => {
          settle({ kind: 'timeout', latencyMs: elapsed() });
          req.destroy();
        }, request.timeoutMs);
        req.on('error', (error: NodeJS.ErrnoException) =>
          settle({ kind: 'network', code: error.code ?? 'ERROR', message: error.message, latencyMs: elapsed() }),
        );
        req.end(request.body);
      });
    },
    close() {
      agent.destroy();
      secureAgent.destroy();
    },
  };
}
