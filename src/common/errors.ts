// One error type for bugs and broken I/O. Expected outcomes (a refused recipient, a bad CSV row)
// are values, not exceptions. Every code is listed in docs/error-codes.md.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNKNOWN_KEY'
  | 'DATABASE_URL_INVALID'
  | 'MIGRATION_FAILED'
  | 'NOT_FOUND'
  | 'INVALID_STATE'
  | 'CSV_UNREADABLE'
  | 'CSV_ENCODING'
  | 'CSV_NO_EMAIL_COLUMN'
  | 'CSV_TOO_LARGE'
  | 'DELIVERY_INVALID'
  | 'DELIVERY_NO_TARGET'
  | 'TEMPLATE_SYNTAX'
  | 'TEMPLATE_RENDER'
  | 'DKIM_KEY_INVALID'
  | 'SMTP_IO'
  | 'DNS_IO'
  | 'RULES_INVALID'
  | 'RULES_SOURCE_UNAVAILABLE'
  | 'BOUNCE_PARSE'
  | 'INPUT_TOO_LARGE'
  | 'INPUT_INVALID'
  | 'MID_REMOTE_UNAVAILABLE'
  | 'MID_REMOTE_REJECTED'
  | 'INTERNAL';

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

export function describeError(error: unknown): string {
  if (error instanceof AppError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
