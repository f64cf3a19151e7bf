import type { ZodType, ZodTypeDef } from 'zod';
import { limitText } from '../bounce/smtp-reply.ts';
import type { Exchange } from './http-transport.ts';
import { isMidErrorBody, midHeaders, type LogsResponse, type MidErrorCode } from './wire.ts';

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

/** What a successful answer must look like, and what it is called in an error message. */
export interface Expected<T> {
  what: string;
  schema: ZodType<T, ZodTypeDef, unknown>;
  /** Checks across fields and against the request (e.g. a logs page's cursor); a message when wrong. */
  check?(value: T): string | undefined;
}

export function interpretExchange<T>(exchange: Exchange, expected?: Expected<T>): CallOutcome<T> {
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
  if (exchange.status >= 200 && exchange.status < 300 && body !== undefined) {
    if (!expected) return { ok: true, value: body as T, latencyMs: exchange.latencyMs };
    const parsed = expected.schema.safeParse(body);
    const problem = parsed.success ? expected.check?.(parsed.data) : describeIssue(parsed.error.issues[0]);
    if (parsed.success && problem === undefined) return { ok: true, value: parsed.data, latencyMs: exchange.latencyMs };
    // Not retried: the same peer answers the same way. Nothing of it is stored or acted on.
    return {
      ok: false,
      retryable: false,
      timeout: false,
      code: 'INVALID_RESPONSE',
      message: `the answer is not a valid ${expected.what}: ${problem}`,
      latencyMs: exchange.latencyMs,
    };
  }
  // The peer's words end up in `herald mid status`, the doctor and logs: one bounded line, control
  // characters replaced (a terminal escape from a hostile peer must not reach the operator's terminal).
  if (isMidErrorBody(body)) {
    return {
      ok: false,
      retryable: body.error.retryable,
      timeout: false,
      code: /^[A-Z_]{1,40}$/.test(body.error.code) ? body.error.code : 'INVALID_RESPONSE',
      message: typeof body.error.message === 'string' ? limitText(body.error.message.slice(0, 500)) : '',
      latencyMs: exchange.latencyMs,
    };
  }
  const excerpt = limitText(exchange.body.subarray(0, 200).toString('utf8'));
  return {
    ok: false,
    retryable: retryableStatuses.has(exchange.status),
    timeout: exchange.status === 408 || exchange.status === 504,
    code: `HTTP_${exchange.status}`,
    message: `HTTP ${exchange.status}${excerpt ? `: ${excerpt}` : ''}`,
    latencyMs: exchange.latencyMs,
  };
}

// What the execution server answers before it has authenticated a request, so cannot sign: these
// stay failures with their own meaning (the peer's hint about secrets and clocks), never a success.
const unsignedErrorCodes = new Set([
  'BAD_SIGNATURE',
  'STALE_TIMESTAMP',
  'REPLAYED',
  'BODY_TOO_LARGE',
  'INVALID_BODY',
  'UNAVAILABLE',
]);

/**
 * An answer whose signature did not check out (signing.ts, answerSignatureMatches): a failure
 * unless it is an error the execution server gives unsigned, or a plain HTTP error with no typed
 * body (a proxy's 502, a 404 page), which interpretExchange already makes a failure. Retried like a
 * network failure: every call is idempotent over there (submit by delivery, parts by key, finalize,
 * state changes by version, logs and counters are reads), and nothing of the answer is used.
 */
export function refuseUnsignedAnswer(
  exchange: Extract<Exchange, { kind: 'response' }>,
  peer: string,
  signed: boolean,
): CallOutcome<never> | undefined {
  if (exchange.status < 200 || exchange.status >= 300) {
    let body: unknown;
    try {
      body = JSON.parse(exchange.body.toString('utf8'));
    } catch {
      return undefined;
    }
    if (!isMidErrorBody(body) || unsignedErrorCodes.has(body.error.code)) return undefined;
  }
  return {
    ok: false,
    retryable: true,
    timeout: false,
    code: 'ANSWER_NOT_SIGNED',
    message: `the answer is not signed by midsourcing.peers ${peer}: wrong url, a proxy answering, or a different secret (HTTP ${exchange.status}, ${signed ? `${midHeaders.answerSignature} does not match` : `no ${midHeaders.answerSignature}`}; nothing of it was used)`,
    latencyMs: exchange.latencyMs,
  };
}

function describeIssue(issue: { path: Array<string | number>; message: string } | undefined): string {
  if (!issue) return 'unexpected shape';
  const path = issue.path.length > 0 ? issue.path.join('.') : '(body)';
  return `${path}: ${issue.message}`.slice(0, 300).replace(/[\x00-\x1f\x7f-\x9f]/g, '\ufffd');
}

/**
 * A logs page answers the request it was asked: at most `limit` changes, each after the cursor sent
 * and at most the page's nextCursor, which never moves back (a cursor moving back would apply older
 * states over newer ones; a page beyond the limit is not what was asked for).
 */
export function checkLogsPage(page: LogsResponse, cursor: number, limit: number): string | undefined {
  if (page.changes.length > limit) return `${page.changes.length} changes for a page of at most ${limit}`;
  if (page.nextCursor < cursor) return `nextCursor ${page.nextCursor} is before the cursor sent (${cursor})`;
  let previous = cursor;
  for (const change of page.changes) {
    if (change.seq <= previous || change.seq > page.nextCursor)
      return `change seq ${change.seq} is out of order (cursor ${cursor}, nextCursor ${page.nextCursor})`;
    previous = change.seq;
  }
  return undefined;
}

/** Exponential backoff with "equal jitter": half the delay fixed, half random, so retries of
 *  parallel parts do not hit a recovering server in lockstep. `attempt` starts at 1. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
