import { Writable } from 'node:stream';
import pino from 'pino';
import pretty from 'pino-pretty';
import { AppError } from './errors.ts';
import { stderrStatusLine, type StatusLine } from './status-line.ts';

export type Logger = pino.Logger;

/** `pretty`: time, level, message and key fields for a person; `json`: one JSON object per line; `auto`: pretty on a terminal. */
export type LogFormat = 'auto' | 'pretty' | 'json';
export const logFormats: readonly LogFormat[] = ['auto', 'pretty', 'json'];

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

export function createLogger(
  options: { level?: string; destination?: NodeJS.WritableStream; format?: LogFormat; statusLine?: StatusLine } = {},
): Logger {
  const level = options.level ?? levelFromEnvironment(process.env.HERALD_LOG_LEVEL);
  const settings = { level, redact: { paths: redactedPaths, censor: '[redacted]' } };
  if (options.destination) return pino(settings, options.destination);
  // On stderr, records go through the status line so that a progress line is erased and redrawn
  // around them instead of being broken.
  const statusLine = options.statusLine ?? stderrStatusLine();
  const format = options.format ?? 'auto';
  const human = format === 'pretty' || (format === 'auto' && statusLine.live);
  const toStderr = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      statusLine.write(chunk.toString());
      callback();
    },
  });
  if (!human) return pino(settings, statusLine.live ? toStderr : pino.destination(2));
  return pino(
    settings,
    pretty({
      destination: toStderr,
      sync: true,
      colorize: statusLine.live,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      singleLine: true,
    }),
  );
}

/** HERALD_LOG_LEVEL (any case; unset or empty: info), or CONFIG_INVALID naming it and the levels. */
function levelFromEnvironment(value: string | undefined): string {
  if (value === undefined || value.trim() === '') return 'info';
  const level = value.trim().toLowerCase();
  const levels = [...Object.keys(pino.levels.values), 'silent'];
  if (levels.includes(level)) return level;
  throw new AppError(
    'CONFIG_INVALID',
    `HERALD_LOG_LEVEL is "${value}", not a log level: choose among ${levels.join(', ')}`,
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
