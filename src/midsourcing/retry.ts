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
    // Resets, refusals and broken pipes are what a restarting or overloaded peer looks like. An
    // answer too large is cut off before its signature can be checked: it may be anyone's (a proxy's
    // page, a flood from the path), so it is no verdict either.
    const tooLarge = exchange.code === 'RESPONSE_TOO_LARGE';
    return {
      ok: false,
      retryable: true,
      timeout: false,
      code: exchange.code,
      message: tooLarge
        ? `${exchange.message}, cut off unread (its signature could not be checked; retried)`
        : exchange.message,
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

// What the execution server answers before it has authenticated a request, so cannot sign: shown
// under their own code (the doctor's hints about secrets and clocks), though still only as faults.
const unsignedErrorCodes = new Set([
  'BAD_SIGNATURE',
  'STALE_TIMESTAMP',
  'REPLAYED',
  'BODY_TOO_LARGE',
  'INVALID_BODY',
  'UNAVAILABLE',
]);

/**
 * An answer whose signature did not check out (signing.ts, answerSignatureMatches). Nothing of it
 * is the execution instance's word: anything on the path (a proxy, a captive portal, a load balancer,
 * a man in the middle on plain HTTP) can answer an error as easily as a success. So it is a transport
 * fault, retried like a network failure (every call is idempotent over there: submit by delivery,
 * parts by key, finalize, state changes by version, logs and counters are reads), and never a verdict
 * that stops a push or a forward. An error keeps its status and claimed code in the message for the
 * operator: a plain HTTP error (a gateway's 404 page) as HTTP_nnn, a typed error the execution server
 * itself gives unsigned under its code; any other typed error becomes ANSWER_NOT_SIGNED.
 */
export function refuseUnsignedAnswer(
  exchange: Extract<Exchange, { kind: 'response' }>,
  peer: string,
  signed: boolean,
): Extract<CallOutcome<never>, { ok: false }> {
  const how = signed ? `${midHeaders.answerSignature} does not match` : `no ${midHeaders.answerSignature}`;
  const claimed = exchange.status >= 200 && exchange.status < 300 ? undefined : interpretExchange(exchange);
  if (claimed && !claimed.ok && (claimed.code.startsWith('HTTP_') || unsignedErrorCodes.has(claimed.code)))
    return {
      ...claimed,
      retryable: true,
      message: `${claimed.message} (HTTP ${exchange.status}, not signed by ${peer}: ${how}; not taken as its verdict, retried)`,
    };
  return {
    ok: false,
    retryable: true,
    timeout: false,
    code: 'ANSWER_NOT_SIGNED',
    message: `the answer is not signed by midsourcing.peers ${peer}: wrong url, a proxy answering, or a different secret (HTTP ${exchange.status}, ${how}; nothing of it was used)${
      signed
        ? ''
        : `; or ${peer} runs a Herald older than answer signing: upgrade it (acceptUnsignedAnswers: true on its midsourcing.peers entry here lets the push through meanwhile)`
    }`,
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
