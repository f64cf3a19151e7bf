import pino from 'pino';

export type Logger = pino.Logger;

// Secrets never reach logs: these keys are masked wherever they appear in a logged object.
const redactedPaths = [
  'password',
  'secret',
  'token',
  'authorization',
  'privateKey',
  '*.password',
  '*.secret',
  '*.token',
  '*.authorization',
  '*.privateKey',
  'databaseUrl',
  '*.databaseUrl',
];

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = options.level ?? process.env.HERALD_LOG_LEVEL ?? 'info';
  return pino({ level, redact: { paths: redactedPaths, censor: '[redacted]' } }, options.destination ?? pino.destination(2));
}

export const silentLogger: Logger = pino({ level: 'silent' });

/** Removes the password from a connection URL before it is shown anywhere. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}
