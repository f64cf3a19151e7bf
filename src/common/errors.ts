// One error type for bugs and broken I/O. Expected outcomes (a refused recipient, a bad CSV row)
// are values, not exceptions. Every code is listed in docs/error-codes.md.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNSAFE'
  | 'DATABASE_URL_INVALID'
  | 'DATABASE_NOT_FOUND'
  | 'DATABASE_NOT_WRITABLE'
  | 'DATABASE_FULL'
  | 'DATABASE_CORRUPT'
  | 'DATABASE_BUSY'
  | 'DATABASE_LOCK_TIMEOUT'
  | 'DATABASE_STATEMENT_TIMEOUT'
  | 'DATABASE_UNREACHABLE'
  | 'DATABASE_AUTH_FAILED'
  | 'MIGRATION_FAILED'
  | 'NOT_FOUND'
  | 'INVALID_STATE'
  | 'NODE_ID_IN_USE'
  | 'CSV_UNREADABLE'
  | 'CSV_ENCODING'
  | 'CSV_NO_EMAIL_COLUMN'
  | 'CSV_TOO_LARGE'
  | 'DELIVERY_INVALID'
  | 'DELIVERY_NO_TARGET'
  | 'TEMPLATE_SYNTAX'
  | 'TEMPLATE_RENDER'
  | 'DKIM_KEY_INVALID'
  | 'RULES_INVALID'
  | 'RULES_SOURCE_UNAVAILABLE'
  | 'INPUT_TOO_LARGE'
  | 'INPUT_INVALID'
  | 'MID_REMOTE_UNAVAILABLE'
  | 'MID_REMOTE_REJECTED'
  | 'CLI_USAGE'
  | 'PORT_IN_USE'
  | 'PREPARATION_FAILED'
  | 'AUTH_REQUIRED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'HOST_NOT_ALLOWED'
  | 'INTERRUPTED'
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
