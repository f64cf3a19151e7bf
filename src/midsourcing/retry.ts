import type { Exchange } from './http-transport.ts';
import { isMidErrorBody, type MidErrorCode } from './wire.ts';

// Pure decisions of the client: what an exchange means, and how long to wait before the next try.

export type CallOutcome<T> =
  | { ok: true; value: T; latencyMs: number }
  | {
      ok: false;
      retryable: boolean;
      timeout: boolean;
      code: MidErrorCode | string;
      message: string;
      latencyMs: number;
    };

// Statuses a proxy or a restarting server answers without our typed body: worth another try.
const retryableStatuses = new Set([408, 425, 429, 500, 502, 503, 504]);

export function interpretExchange<T>(exchange: Exchange): CallOutcome<T> {
  if (exchange.kind === 'timeout') {
    return {
      ok: false,
      retryable: true,
      timeout: true,
      code: 'TIMEOUT',
      message: `no response within the request timeout (${exchange.latencyMs} ms)`,
      latencyMs: exchange.latencyMs,
    };
  }
  if (exchange.kind === 'network') {
    // Resets, refusals and broken pipes are what a restarting or overloaded peer looks like.
    return {
      ok: false,
      retryable: exchange.code !== 'RESPONSE_TOO_LARGE',
      timeout: false,
      code: exchange.code,
      message: exchange.message,
      latencyMs: exchange.latencyMs,
    };
  }
  let body: unknown;
  try {
    body = exchange.body.length > 0 ? JSON.parse(exchange.body.toString('utf8')) : undefined;
  } catch {
    body = undefined;
  }
  if (exchange.status >= 200 && exchange.status < 300 && body !== undefined)
    return { ok: true, value: body as T, latencyMs: exchange.latencyMs };
  if (isMidErrorBody(body)) {
    return {
      ok: false,
      retryable: body.error.retryable,
      timeout: false,
      code: body.error.code,
      message: body.error.message,
      latencyMs: exchange.latencyMs,
    };
  }
  const excerpt = exchange.body.subarray(0, 200).toString('utf8').replace(/\s+/g, ' ');
  return {
    ok: false,
    retryable: retryableStatuses.has(exchange.status),
    timeout: exchange.status === 408 || exchange.status === 504,
    code: `HTTP_${exchange.status}`,
    message: `HTTP ${exchange.status}${excerpt ? `: ${excerpt}` : ''}`,
    latencyMs: exchange.latencyMs,
  };
}

/** Exponential backoff with "equal jitter": half the delay fixed, half random, so retries of
 *  parallel parts do not hit a recovering server in lockstep. `attempt` starts at 1. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
