import { z } from 'zod';

// The mid-sourcing wire protocol, shared by the marketing client and the execution server so both
// sides compile against one definition. Paths are versioned: a breaking change gets /mid/v2.
//
//   POST /mid/v1/deliveries                      submit (idempotent by peer + marketing delivery id)
//   POST /mid/v1/deliveries/:id/parts/:n         append part n (gzip NDJSON of PartLine)
//   POST /mid/v1/deliveries/:id/finalize         all parts are in: start sending
//   GET  /mid/v1/deliveries/:id/logs?cursor=&limit=   changed delivery logs after a server cursor
//   GET  /mid/v1/deliveries/:id/counters         counts by status
//   POST /mid/v1/deliveries/:id/state            an operator's pause / resume / stop, as a versioned target state

export const midPathPrefix = '/mid/v1';

export const midPaths = {
  submit: () => `${midPathPrefix}/deliveries`,
  part: (remoteId: number, part: number) => `${midPathPrefix}/deliveries/${remoteId}/parts/${part}`,
  finalize: (remoteId: number) => `${midPathPrefix}/deliveries/${remoteId}/finalize`,
  logs: (remoteId: number, cursor: number, limit: number) =>
    `${midPathPrefix}/deliveries/${remoteId}/logs?cursor=${cursor}&limit=${limit}`,
  counters: (remoteId: number) => `${midPathPrefix}/deliveries/${remoteId}/counters`,
  state: (remoteId: number) => `${midPathPrefix}/deliveries/${remoteId}/state`,
};

/** Request headers of the signature scheme (src/midsourcing/signing.ts). */
export const midHeaders = {
  peer: 'x-herald-peer',
  timestamp: 'x-herald-timestamp',
  nonce: 'x-herald-nonce',
  signature: 'x-herald-signature',
  /** HMAC over the request line, timestamp, nonce and declared Content-Length: checked before the body is read. */
  headSignature: 'x-herald-head-signature',
  /** Idempotency key of a part: `<part number>:<sha256 of the uncompressed NDJSON>`. */
  partKey: 'x-herald-part-key',
} as const;

export const submitRequestSchema = z
  .object({
    marketingDeliveryId: z.number().int().positive(),
    name: z.string().min(1).max(200),
    fromAddress: z.string().min(3).max(320),
    fromName: z.string().max(200).nullable(),
    replyTo: z.string().max(320).nullable(),
    subject: z.string().min(1).max(2_000),
    html: z.string().max(2_000_000).nullable(),
    text: z.string().max(2_000_000).nullable(),
    /** Soft failures are retried this long after finalize (the execution side enforces validity). */
    validitySeconds: z
      .number()
      .int()
      .positive()
      .max(30 * 86_400),
    affinity: z.string().min(1).max(200).nullable(),
    /** What the marketing side intends to push (checked at finalize). */
    parts: z.number().int().min(1).max(1_000_000),
    recipients: z.number().int().min(1),
  })
  .strict();
export type SubmitRequest = z.infer<typeof submitRequestSchema>;

export interface SubmitResponse {
  remoteId: number;
  state: string;
  /** Parts the execution side already holds (a resumed push skips them). */
  partsReceived: number;
}

/** One NDJSON line of a part: a marketing delivery log with its personalization data. */
export const partLineSchema = z
  .object({
    /** The marketing delivery log id: logs pulled back carry it, so the marketing side updates by id. */
    id: z.number().int().positive(),
    email: z.string().min(3).max(320),
    domain: z.string().min(1).max(255),
    /** JSON text of the personalization values, passed through untouched. */
    data: z.string().max(64 * 1024),
  })
  .strict();
export type PartLine = z.infer<typeof partLineSchema>;

export interface PartResponse {
  part: number;
  recipients: number;
  /** True when this part had already been received: acknowledged, not inserted again. */
  duplicate: boolean;
}

export const finalizeRequestSchema = z
  .object({ parts: z.number().int().min(1), recipients: z.number().int().min(1) })
  .strict();
export type FinalizeRequest = z.infer<typeof finalizeRequestSchema>;

export interface FinalizeResponse {
  state: string;
  validUntil: number | null;
}

/** The current state of one delivery log that changed after the cursor. */
export interface LogChange {
  /** Server change sequence: the cursor to send back is the `nextCursor` of the page. */
  seq: number;
  /** Marketing delivery log id. */
  id: number;
  status: 'pending' | 'sent' | 'failed' | 'ignored' | 'cancelled';
  attempts: number;
  replyCode: number | null;
  enhancedStatus: string | null;
  replyText: string | null;
  failureType: 'hard' | 'soft' | 'ignored' | null;
  failureReason: string | null;
  failureCategory: string | null;
  mxHost: string | null;
  sentAt: number | null;
  updatedAt: number;
}

export interface LogsResponse {
  changes: LogChange[];
  nextCursor: number;
  /** No change after nextCursor was committed when the page was read. */
  caughtUp: boolean;
  /** The execution delivery's state when the page was read. */
  state: string;
}

export interface CountersResponse {
  state: string;
  total: number;
  pending: number;
  sent: number;
  failed: number;
  ignored: number;
  cancelled: number;
  retried: number;
  byReason: Record<string, number>;
  updatedAt: number;
}

/** The delivery states an operator's pause, resume and stop lead to: the ones forwarded to the execution side. */
export const forwardedStates = ['paused', 'in_progress', 'stopped'] as const;
export type ForwardedState = (typeof forwardedStates)[number];

/**
 * The marketing delivery's state as a target, numbered by the marketing side (1, 2, ... per delivery).
 * The execution side applies a version once and ignores any version at or below the highest it has
 * recorded, so a retry, or a late copy of an older request, can never undo a newer change.
 */
export const stateChangeRequestSchema = z
  .object({
    state: z.enum(forwardedStates),
    version: z.number().int().positive().max(2_000_000_000),
  })
  .strict();
export type StateChangeRequest = z.infer<typeof stateChangeRequestSchema>;

/**
 * applied: the execution delivery changed state now; already: it was in that state; held: not
 * finalized yet, applied at finalize; final: it had already ended (finished, stopped, failed), nothing
 * to change; duplicate: this version (or a newer one) was already recorded, nothing done.
 */
export type StateChangeOutcome = 'applied' | 'already' | 'held' | 'final' | 'duplicate';

export interface StateChangeResponse {
  /** The execution delivery's state after the request. */
  state: string;
  /** The highest version recorded by the execution side. */
  version: number;
  outcome: StateChangeOutcome;
}

/** Error codes of the protocol; `retryable` tells the client whether the same request may succeed later. */
export type MidErrorCode =
  | 'BAD_SIGNATURE'
  | 'STALE_TIMESTAMP'
  | 'REPLAYED'
  | 'BODY_TOO_LARGE'
  | 'INVALID_BODY'
  | 'NOT_FOUND'
  | 'INVALID_STATE'
  | 'PART_CONFLICT'
  | 'PARTS_MISSING'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface MidErrorBody {
  error: { code: MidErrorCode; message: string; retryable: boolean };
}

const retryableCodes: ReadonlySet<MidErrorCode> = new Set(['UNAVAILABLE', 'INTERNAL']);

export function midError(code: MidErrorCode, message: string): MidErrorBody {
  return { error: { code, message, retryable: retryableCodes.has(code) } };
}

/** The HTTP status of each error code (chosen here, the one place both sides read). */
export function statusOfMidError(code: MidErrorCode): number {
  switch (code) {
    case 'BAD_SIGNATURE':
    case 'STALE_TIMESTAMP':
    case 'REPLAYED':
      return 401;
    case 'BODY_TOO_LARGE':
      return 413;
    case 'INVALID_BODY':
      return 400;
    case 'NOT_FOUND':
      return 404;
    case 'INVALID_STATE':
    case 'PART_CONFLICT':
    case 'PARTS_MISSING':
      return 409;
    case 'UNAVAILABLE':
      return 503;
    case 'INTERNAL':
      return 500;
  }
}

export function isMidErrorBody(value: unknown): value is MidErrorBody {
  const error = (value as { error?: unknown } | null)?.error as { code?: unknown; retryable?: unknown } | undefined;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof error.code === 'string' &&
    typeof error.retryable === 'boolean'
  );
}
