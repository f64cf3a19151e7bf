import type { Command } from 'commander';
import { AppError, describeError } from '../common/errors.ts';
import { openHerald, type Herald, type OpenHeraldOptions } from '../main.ts';

// Shared plumbing of every command: opening Herald, printing results and errors the same way.

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export interface CliContext {
  output: Output;
  /** How commands open Herald; tests pass a function that points at their own database. */
  open(options?: OpenHeraldOptions): Promise<Herald>;
}

export function defaultCliContext(): CliContext {
  return { output: processOutput, open: openHerald };
}

/** Opens Herald with the global --config option, runs `action`, and always closes it. */
export async function withHerald<T>(context: CliContext, command: Command, action: (herald: Herald) => Promise<T>): Promise<T> {
  const globals = command.optsWithGlobals() as { config?: string };
  const herald = await context.open(globals.config ? { file: globals.config } : {});
  try {
    return await action(herald);
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
    printJson(context, { error: { code, message: error instanceof Error ? error.message : String(error) } });
  }
  context.output.err(`error: ${describeError(error)}`);
  if (!(error instanceof AppError) && error instanceof Error && process.env.HERALD_DEBUG) context.output.err(error.stack ?? '');
  return 1;
}

/** A command-line id or count: a positive whole number, or INPUT_INVALID naming the argument. */
export function positiveInteger(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new AppError('INPUT_INVALID', `${what} must be a positive whole number (got "${value}")`);
  return n;
}
