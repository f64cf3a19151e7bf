import { runCli } from '../../src/cli/main.ts';
import type { CliContext } from '../../src/cli/context.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { parseConfig } from '../../src/config/load.ts';
import { openHerald } from '../../src/main.ts';

export interface CliRun {
  exitCode: number;
  stdout: string[];
  stderr: string[];
  /** stdout lines parsed as JSON (for --json commands). */
  json<T = Record<string, unknown>>(): T[];
}

/** Runs `herald ...args` in-process against the database at `databaseUrl`, capturing its output. */
export async function runHerald(
  databaseUrl: string,
  args: string[],
  config: Record<string, unknown> = {},
): Promise<CliRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const context: CliContext = {
    output: { out: (line) => stdout.push(line), err: (line) => stderr.push(line) },
    open: () =>
      openHerald({ config: parseConfig({ ...config, database: { url: databaseUrl } }, 'test'), logger: silentLogger }),
  };
  const exitCode = await runCli(['node', 'herald', ...args], context);
  return {
    exitCode,
    stdout,
    stderr,
    json: <T>() => stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as T),
  };
}
