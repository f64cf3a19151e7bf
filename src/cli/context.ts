import type { Command } from 'commander';
import { invisibleCharacterClass } from '../common/bidi-controls.ts';
import { AppError, describeError } from '../common/errors.ts';
import type { LogFormat } from '../common/logger.ts';
import { stderrStatusLine } from '../common/status-line.ts';
import { openHerald, type Herald, type OpenHeraldOptions } from '../main.ts';
import { storageError } from '../store/storage-error.ts';

// Shared plumbing of every command: opening Herald, printing results and errors the same way.

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

// C0 and C1 control characters other than tab and line feed, and DEL: recipient data (a CSV row an
// import rejected), SMTP replies and bounce texts are printed, and an ESC or CSI in them would be
// obeyed by the operator's terminal (clear the screen, recolour or hide text, set the window title).
// Bidirectional controls too: a terminal that lays out bidirectional text (GNOME's, KDE's) showed
// "victim@<U+202E>elpmaxe.knab" as "victim@bank.example"; and the other invisible characters
// (zero-width space, BOM, tags: common/bidi-controls.ts), which no terminal shows.
const controlCharacters = new RegExp(`[[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]${invisibleCharacterClass}]`, 'gv');

/**
 * A line as the terminal should show it: each control character spelled `\u001b` (a character
 * past U+FFFF as its two UTF-16 halves, `\udb40\udc41`), which keeps a JSON line valid and equal.
 */
export function printable(line: string): string {
  return line.replace(controlCharacters, (char) =>
    Array.from({ length: char.length }, (_, i) => `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(`${printable(line)}\n`),
  // Through the status line: a live progress line is redrawn below instead of broken.
  err: (line) => stderrStatusLine().write(`${printable(line)}\n`),
};

export interface CliContext {
  output: Output;
  /** How commands open Herald; tests pass a function that points at their own database. */
  open(options?: OpenHeraldOptions): Promise<Herald>;
}

export function defaultCliContext(): CliContext {
  return { output: processOutput, open: openHerald };
}

/**
 * Opens Herald with the global --config option, runs `action`, and always closes it. Only commands
 * that put data in (start, demo, import recipients, delivery create) pass `create`: every other
 * command fails with DATABASE_NOT_FOUND naming the path instead of creating an empty database.
 * A NOT_FOUND error names the database it looked in.
 */
export async function withHerald<T>(
  context: CliContext,
  command: Command,
  action: (herald: Herald) => Promise<T>,
  options: { create?: boolean } = {},
): Promise<T> {
  const globals = command.optsWithGlobals() as { config?: string; logFormat?: LogFormat };
  const herald = await context.open({
    ...(globals.config ? { file: globals.config } : {}),
    create: options.create ?? false,
    logFormat: globals.logFormat ?? 'auto',
  });
  try {
    return await action(herald);
  } catch (error) {
    const storage = storageError(error, herald.store.location);
    if (storage) throw storage;
    if (error instanceof AppError && error.code === 'NOT_FOUND' && !error.message.includes(herald.store.location))
      throw new AppError('NOT_FOUND', `${error.message} (database ${herald.store.location})`, {
        cause: error.cause,
        details: { ...error.details, database: herald.store.location },
      });
    throw error;
  } finally {
    await herald.close();
  }
}

export function printJson(context: CliContext, value: unknown): void {
  context.output.out(JSON.stringify(value));
}

export class CliExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

export function reportError(context: CliContext, error: unknown, json: boolean): number {
  if (json) {
    const code = error instanceof AppError ? error.code : 'INTERNAL';
    const details = error instanceof AppError ? error.details : {};
    printJson(context, {
      error: { ...details, code, message: error instanceof Error ? error.message : String(error) },
    });
  }
  context.output.err(`error: ${describeError(error)}`);
  if (!(error instanceof AppError) && error instanceof Error && process.env.HERALD_DEBUG)
    context.output.err(error.stack ?? '');
  return 1;
}

/** A command-line id or count: a positive whole number, or INPUT_INVALID naming the argument. */
export function positiveInteger(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new AppError('INPUT_INVALID', `${what} must be a positive whole number (got "${value}")`);
  return n;
}

/**
 * Runs `work` with an AbortSignal that Ctrl-C (SIGINT) or SIGTERM aborts, so the work can stop at a
 * safe point and roll back instead of the process dying mid-way.
 */
export async function interruptible<T>(context: CliContext, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    context.output.err(`${signal}: stopping at the next batch and rolling back…`);
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
