import { Type, type Static } from '@sinclair/typebox';
import type { ErrorCode } from '../common/errors.ts';

// Errors leave the API as RFC 9457 problem details (application/problem+json) carrying the stable
// code of docs/error-codes.md. HTTP statuses are chosen here and nowhere else.

export const problemSchema = Type.Object(
  {
    type: Type.String({ description: 'urn:herald:error:<code>' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String({ description: 'the request path' }),
    code: Type.String({ description: 'stable error code, see docs/error-codes.md' }),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String({
            description:
              'JSON pointer into the request: /body/name, /query/limit, /params/id, /headers/idempotency-key',
          }),
          message: Type.String(),
        }),
      ),
    ),
  },
  { additionalProperties: false },
);

export type Problem = Static<typeof problemSchema>;
export type FieldError = { path: string; message: string };

const statusByCode: Partial<Record<ErrorCode, number>> = {
  AUTH_REQUIRED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  INVALID_STATE: 409,
  INPUT_TOO_LARGE: 413,
  CSV_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  HOST_NOT_ALLOWED: 421,
  // The server's configuration does not allow the action (no deliverability.source set…): not the request's fault, not a crash.
  CONFIG_INVALID: 409,
  INPUT_INVALID: 400,
  DELIVERY_INVALID: 400,
  DELIVERY_NO_TARGET: 400,
  TEMPLATE_SYNTAX: 400,
  TEMPLATE_RENDER: 400,
  CSV_UNREADABLE: 400,
  CSV_ENCODING: 400,
  CSV_NO_EMAIL_COLUMN: 400,
  RULES_INVALID: 422,
  RULES_SOURCE_UNAVAILABLE: 502,
  MID_REMOTE_UNAVAILABLE: 502,
  MID_REMOTE_REJECTED: 502,
};

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export function statusOf(code: ErrorCode): number {
  return statusByCode[code] ?? 500;
}

/**
 * Field errors listed in one problem: a megabyte of unknown fields was answered with one error each,
 * 5.5 MB out for 1 MB in, to any token; the detail counts those left out.
 */
export const maxFieldErrors = 50;

export function problem(
  code: ErrorCode,
  detail: string,
  instance: string,
  options: { status?: number; errors?: FieldError[] } = {},
): Problem {
  const status = options.status ?? statusOf(code);
  const errors = options.errors;
  const cut = errors !== undefined && errors.length > maxFieldErrors;
  return {
    type: `urn:herald:error:${code}`,
    title: titles[status] ?? 'Error',
    status,
    detail: cut ? `${detail} (the first ${maxFieldErrors} of ${errors.length} errors are listed)` : detail,
    instance,
    code,
    ...(errors && { errors: cut ? errors.slice(0, maxFieldErrors) : errors }),
  };
}
