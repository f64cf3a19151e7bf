import { systemClock, type Clock } from '../common/clock.ts';
import { AppError } from '../common/errors.ts';
import { randomId } from '../common/ids.ts';
import type { MidPeerConfig } from './config.ts';
import { createHttpTransport, type Transport } from './http-transport.ts';
import { interpretExchange, retryDelayMs, type CallOutcome } from './retry.ts';
import { signRequest } from './signing.ts';
import {
  midHeaders,
  midPaths,
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
  maxResponseBytes?: number;
}

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
  const maxResponseBytes = options.maxResponseBytes ?? 256 * 1024 * 1024;

  async function call<T>(
    method: 'GET' | 'POST',
    path: string,
    body: Buffer | undefined,
    extraHeaders: Record<string, string> = {},
  ): Promise<CallOutcome<T>> {
    const url = new URL(path, base);
    const signed = signRequest({
      peer: options.localName,
      secret: peer.secret,
      method,
      path: url.pathname + url.search,
      body: body ?? Buffer.alloc(0),
      now: clock.now(),
      nonce: randomId(16),
    });
    const headers: Record<string, string> = { ...signed, ...extraHeaders, accept: 'application/json' };
    const exchange = await transport.exchange({
      url,
      method,
      headers,
      body,
      timeoutMs: options.timeoutMs,
      maxResponseBytes,
    });
    return interpretExchange<T>(exchange);
  }
  const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');

  return {
    peerName: peer.name,
    submit: (request) => call('POST', midPaths.submit(), json(request), { 'content-type': 'application/json' }),
    appendPart: (remoteId, part, key, gzipBody) =>
      call('POST', midPaths.part(remoteId, part), gzipBody, {
        'content-type': 'application/x-ndjson',
        'content-encoding': 'gzip',
        [midHeaders.partKey]: key,
      }),
    finalize: (remoteId, request) =>
      call('POST', midPaths.finalize(remoteId), json(request), { 'content-type': 'application/json' }),
    logs: (remoteId, cursor, limit) => call('GET', midPaths.logs(remoteId, cursor, limit), undefined),
    counters: (remoteId) => call('GET', midPaths.counters(remoteId), undefined),
    changeState: (remoteId, request) =>
      call('POST', midPaths.state(remoteId), json(request), { 'content-type': 'application/json' }),
    close() {
      if (ownTransport) transport.close();
    },
  };
}

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
