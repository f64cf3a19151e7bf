import { systemClock, type Clock } from '../common/clock.ts';
import { AppError } from '../common/errors.ts';
import { randomId } from '../common/ids.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { MidPeerConfig } from './config.ts';
import { createHttpTransport, type Transport } from './http-transport.ts';
import {
  checkLogsPage,
  interpretExchange,
  refuseUnsignedAnswer,
  retryDelayMs,
  type CallOutcome,
  type Expected,
} from './retry.ts';
import { answerSignatureMatches, signRequest } from './signing.ts';
import {
  countersResponseSchema,
  finalizeResponseSchema,
  logsResponseSchema,
  midHeaders,
  midPaths,
  partResponseSchema,
  stateChangeResponseSchema,
  submitResponseSchema,
  type CountersResponse,
  type FinalizeRequest,
  type FinalizeResponse,
  type LogsResponse,
  type PartResponse,
  type StateChangeRequest,
  type StateChangeResponse,
  type SubmitRequest,
  type SubmitResponse,
} from './wire.ts';

// The marketing side's client of one execution peer: every call signed afresh (new timestamp and
// nonce per attempt, so a retry is never taken for a replay), one attempt per call; retries are the
// caller's (withRetries below), so it can record each attempt.

export interface PeerClientOptions {
  peer: MidPeerConfig;
  /** The name this instance signs with (midsourcing.name). */
  localName: string;
  timeoutMs: number;
  clock?: Clock;
  transport?: Transport;
  /** Largest answer read, but for logs pages (bounded by their row limit): the others are a few hundred bytes. */
  maxResponseBytes?: number;
  /** Where believing unsigned answers (peer.acceptUnsignedAnswers) is reported. */
  logger?: Logger;
}

/**
 * The largest logs page read: a change is at most ~4 KiB as JSON (1,000 characters of reply, 3
 * bytes each in UTF-8, plus its other bounded fields), so a page of `limit` changes fits; a peer
 * sending more is cut off there instead of being buffered and parsed whole.
 */
export const maxLogsPageBytes = (limit: number) => 64 * 1024 + limit * 4 * 1024;

export interface PeerClient {
  readonly peerName: string;
  submit(request: SubmitRequest): Promise<CallOutcome<SubmitResponse>>;
  appendPart(remoteId: number, part: number, key: string, gzipBody: Buffer): Promise<CallOutcome<PartResponse>>;
  finalize(remoteId: number, request: FinalizeRequest): Promise<CallOutcome<FinalizeResponse>>;
  logs(remoteId: number, cursor: number, limit: number): Promise<CallOutcome<LogsResponse>>;
  counters(remoteId: number): Promise<CallOutcome<CountersResponse>>;
  changeState(remoteId: number, request: StateChangeRequest): Promise<CallOutcome<StateChangeResponse>>;
  close(): void;
}

export function createPeerClient(options: PeerClientOptions): PeerClient {
  const { peer } = options;
  if (!peer.url)
    throw new AppError('CONFIG_INVALID', `midsourcing.peers: peer "${peer.name}" needs a url to be pushed to`);
  const base = new URL(peer.url);
  const clock = options.clock ?? systemClock;
  const ownTransport = options.transport === undefined;
  const transport = options.transport ?? createHttpTransport();
  const maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
  const logger = options.logger ?? silentLogger;
  // An upgrade in progress (docs/midsourcing.md, Upgrading): said when the client is made, at the
  // first unsigned answer believed, and when the peer turns out to sign already.
  const upgrade = { unsignedBelieved: false, signedSeen: false };
  if (peer.acceptUnsignedAnswers)
    logger.warn(
      { peer: peer.name, url: peer.url },
      `midsourcing.peers ${peer.name}: acceptUnsignedAnswers is on: answers of ${peer.name} without ${midHeaders.answerSignature} are believed, so anything answering on its url can acknowledge parts and report outcomes; remove it once ${peer.name} is upgraded`,
    );

  async function call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: Buffer | undefined,
    expected: Expected<T>,
    extraHeaders: Record<string, string> = {},
    responseLimit = maxResponseBytes,
  ): Promise<CallOutcome<T>> {
    const url = new URL(path, base);
    const nonce = randomId(16);
    const signed = signRequest({
      peer: options.localName,
      secret: peer.secret,
      method,
      path: url.pathname + url.search,
      body: body ?? Buffer.alloc(0),
      now: clock.now(),
      nonce,
    });
    const headers: Record<string, string> = { ...signed, ...extraHeaders, accept: 'application/json' };
    const exchange = await transport.exchange({
      url,
      method,
      headers,
      body,
      timeoutMs: options.timeoutMs,
      maxResponseBytes: responseLimit,
    });
    if (exchange.kind === 'response') {
      // Believed only when signed by the peer's secret over this very request (its nonce).
      const signature = exchange.headers[midHeaders.answerSignature];
      const given = typeof signature === 'string' ? signature : undefined;
      const genuine = answerSignatureMatches(
        {
          secret: peer.secret,
          peer: options.localName,
          method,
          path: url.pathname + url.search,
          nonce,
          status: exchange.status,
          body: exchange.body,
        },
        given,
      );
      if (genuine) noteSigned();
      else if (given === undefined && peer.acceptUnsignedAnswers) noteUnsignedBelieved(method, url.pathname);
      else return explainRefusal(refuseUnsignedAnswer(exchange, peer.name, given !== undefined));
    }
    return explainRefusal(interpretExchange(exchange, expected));
  }

  function noteUnsignedBelieved(method: string, path: string): void {
    if (upgrade.unsignedBelieved) return;
    upgrade.unsignedBelieved = true;
    logger.warn(
      { peer: peer.name, method, path },
      `believing an answer of ${peer.name} that is not signed (midsourcing.peers ${peer.name} acceptUnsignedAnswers is on): upgrade ${peer.name}, then remove the setting`,
    );
  }
  function noteSigned(): void {
    if (!peer.acceptUnsignedAnswers || upgrade.signedSeen) return;
    upgrade.signedSeen = true;
    logger.warn(
      { peer: peer.name },
      `${peer.name} signs its answers: remove acceptUnsignedAnswers from its midsourcing.peers entry`,
    );
  }

  // The execution side answers an unknown peer and a wrong secret alike (names cannot be probed);
  // this side knows both names, so it says what to compare. The secret itself is never printed.
  function explainRefusal<T>(outcome: CallOutcome<T>): CallOutcome<T> {
    if (outcome.ok) return outcome;
    if (outcome.code === 'BAD_SIGNATURE')
      return {
        ...outcome,
        message: `${outcome.message}; ${peer.name} must list this instance in its midsourcing.peers as "${options.localName}" (this instance's midsourcing.name) with the same secret as the "${peer.name}" entry here`,
      };
    // The same part is refused at every attempt, and a smaller partSize here does not split it (a
    // push keeps the parts it planned): only the execution instance's limits can let it through.
    if (outcome.code === 'BODY_TOO_LARGE')
      return {
        ...outcome,
        message: `${outcome.message}; raise midsourcing.maxBodyBytes on ${peer.name} (and maxPartBytes, for a part too large once decompressed): a push keeps the parts it planned, so a smaller midsourcing.partSize here applies to deliveries pushed later only`,
      };
    if (outcome.code === 'STALE_TIMESTAMP')
      return {
        ...outcome,
        message: `${outcome.message}; the clocks of this instance and ${peer.name} differ: synchronize both (NTP)`,
      };
    return outcome;
  }
  const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');

  return {
    peerName: peer.name,
    submit: (request) =>
      call('POST', midPaths.submit(), json(request), submitExpected, { 'content-type': 'application/json' }),
    appendPart: (remoteId, part, key, gzipBody) =>
      call(
        'POST',
        midPaths.part(remoteId, part),
        gzipBody,
        {
          what: `acknowledgement of part ${part}`,
          schema: partResponseSchema,
          check: (ack) => (ack.part === part ? undefined : `it acknowledges part ${ack.part}`),
        },
        {
          'content-type': 'application/x-ndjson',
          'content-encoding': 'gzip',
          [midHeaders.partKey]: key,
        },
      ),
    finalize: (remoteId, request) =>
      call('POST', midPaths.finalize(remoteId), json(request), finalizeExpected, {
        'content-type': 'application/json',
      }),
    logs: (remoteId, cursor, limit) =>
      call(
        'GET',
        midPaths.logs(remoteId, cursor, limit),
        undefined,
        { what: 'logs page', schema: logsResponseSchema, check: (page) => checkLogsPage(page, cursor, limit) },
        {},
        maxLogsPageBytes(limit),
      ),
    counters: (remoteId) => call('GET', midPaths.counters(remoteId), undefined, countersExpected),
    changeState: (remoteId, request) =>
      call('POST', midPaths.state(remoteId), json(request), stateChangeExpected, {
        'content-type': 'application/json',
      }),
    close() {
      if (ownTransport) transport.close();
    },
  };
}

const submitExpected: Expected<SubmitResponse> = { what: 'submit answer', schema: submitResponseSchema };
const finalizeExpected: Expected<FinalizeResponse> = { what: 'finalize answer', schema: finalizeResponseSchema };
const countersExpected: Expected<CountersResponse> = { what: 'counters answer', schema: countersResponseSchema };
const stateChangeExpected: Expected<StateChangeResponse> = {
  what: 'state change answer',
  schema: stateChangeResponseSchema,
};

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxMs: number;
  /** Injected so tests do not wait on the wall clock when they do not need to. */
  sleep?(ms: number): Promise<void>;
  random?(): number;
}

export const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Repeats `attempt` while it fails retryably, up to maxAttempts; `onAttempt` sees every outcome. */
export async function withRetries<T>(
  policy: RetryPolicy,
  attempt: () => Promise<CallOutcome<T>>,
  onAttempt?: (outcome: CallOutcome<T>, attemptNumber: number) => void | Promise<void>,
  shouldStop?: () => boolean,
): Promise<CallOutcome<T>> {
  const sleep = policy.sleep ?? realSleep;
  const random = policy.random ?? Math.random;
  for (let n = 1; ; n++) {
    const outcome = await attempt();
    await onAttempt?.(outcome, n);
    if (outcome.ok || !outcome.retryable || n >= policy.maxAttempts || shouldStop?.()) return outcome;
    await sleep(retryDelayMs(n, policy.baseMs, policy.maxMs, random()));
  }
}
