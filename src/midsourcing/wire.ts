import { z } from 'zod';
import { limitText } from '../bounce/smtp-reply.ts';

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

/** Headers of the signature scheme (src/midsourcing/signing.ts). */
export const midHeaders = {
  peer: 'x-herald-peer',
  timestamp: 'x-herald-timestamp',
  nonce: 'x-herald-nonce',
  signature: 'x-herald-signature',
  /** HMAC over the request line, timestamp, nonce and declared Content-Length: checked before the body is read. */
  headSignature: 'x-herald-head-signature',
  /** Answer header: HMAC of the execution server over the request answered, the status and the body (signing.ts). */
  answerSignature: 'x-herald-answer-signature',
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

// Answers are checked by the marketing side before it stores or acts on anything in them: an execution
// instance (or whatever answers on its address) can be broken or hostile, and what it says ends up in
// the marketing database, the CLI, the dashboard and the next request's path. Unknown fields are
// ignored (a newer peer may add some); every field read must have its type and range.

/** A delivery state as the execution side names it (lower-case words): compared, stored and printed. */
const remoteStateSchema = z.string().regex(/^[a-z_]{1,32}$/, 'a delivery state (lower-case letters and _)');
const countSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const idSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** A failure reason or category: a word of the qualification vocabulary. */
const vocabularyWordSchema = z.string().regex(/^[a-z_]{1,64}$/, 'a word of lower-case letters and _');
/** Text shown to operators (SMTP replies, host names): bounded, control characters replaced as the MTA does. */
const displayTextSchema = (max: number) => z.string().max(max).transform(limitText);

export const submitResponseSchema = z.object({
  remoteId: idSchema,
  state: remoteStateSchema,
  /** Parts the execution side already holds (a resumed push skips them). */
  partsReceived: countSchema,
});
export type SubmitResponse = z.infer<typeof submitResponseSchema>;

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

export const partResponseSchema = z.object({
  part: idSchema,
  recipients: countSchema,
  /** True when this part had already been received: acknowledged, not inserted again. */
  duplicate: z.boolean(),
});
export type PartResponse = z.infer<typeof partResponseSchema>;

export const finalizeRequestSchema = z
  .object({ parts: z.number().int().min(1), recipients: z.number().int().min(1) })
  .strict();
export type FinalizeRequest = z.infer<typeof finalizeRequestSchema>;

export const finalizeResponseSchema = z.object({
  state: remoteStateSchema,
  validUntil: countSchema.nullable(),
});
export type FinalizeResponse = z.infer<typeof finalizeResponseSchema>;

/** The current state of one delivery log that changed after the cursor. */
export const logChangeSchema = z.object({
  /** Server change sequence: the cursor to send back is the `nextCursor` of the page. */
  seq: idSchema,
  /** Marketing delivery log id. */
  id: idSchema,
  status: z.enum(['pending', 'sent', 'failed', 'ignored', 'cancelled']),
  attempts: z.number().int().min(0).max(1_000_000),
  replyCode: z.number().int().min(100).max(999).nullable(),
  enhancedStatus: displayTextSchema(64).nullable(),
  /** The MTA and the bounce processor keep at most 1,000 characters of a reply. */
  replyText: displayTextSchema(1_000).nullable(),
  failureType: z.enum(['hard', 'soft', 'ignored']).nullable(),
  failureReason: vocabularyWordSchema.nullable(),
  failureCategory: vocabularyWordSchema.nullable(),
  mxHost: displayTextSchema(255).nullable(),
  sentAt: countSchema.nullable(),
  updatedAt: countSchema,
});
export type LogChange = z.infer<typeof logChangeSchema>;

export const logsResponseSchema = z.object({
  changes: z.array(logChangeSchema),
  nextCursor: countSchema,
  /** No change after nextCursor was committed when the page was read. */
  caughtUp: z.boolean(),
  /** The execution delivery's state when the page was read. */
  state: remoteStateSchema,
});
export type LogsResponse = z.infer<typeof logsResponseSchema>;

export const countersResponseSchema = z.object({
  state: remoteStateSchema,
  total: countSchema,
  pending: countSchema,
  sent: countSchema,
  failed: countSchema,
  ignored: countSchema,
  cancelled: countSchema,
  retried: countSchema,
  byReason: z
    .record(vocabularyWordSchema, countSchema)
    .refine((counts) => Object.keys(counts).length <= 100, 'at most 100 reasons'),
  updatedAt: countSchema,
});
export type CountersResponse = z.infer<typeof countersResponseSchema>;

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

export const stateChangeResponseSchema = z.object({
  /** The execution delivery's state after the request. */
  state: remoteStateSchema,
  /** The highest version recorded by the execution side. */
  version: z.number().int().min(0).max(2_000_000_000),
  outcome: z.enum(['applied', 'already', 'held', 'final', 'duplicate']),
});
export type StateChangeResponse = z.infer<typeof stateChangeResponseSchema>;

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
