import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { logFormats } from '../common/logger.ts';
import { CliExit, defaultCliContext, printJson, reportError, type CliContext } from './context.ts';

type Registrar = (program: Command, context: CliContext) => void;

/**
 * Each top-level command and the modules that register it, in the order `herald --help` lists
 * them. A command loads only its own modules: all of them together (HTTP servers, SMTP, MIME
 * parsers, the roles) cost `herald --version` ~1 s and ~60 MiB more than `herald import` needs.
 */
const commandModules: Record<string, () => Promise<Registrar[]>> = {
  delivery: async () => [
    (await import('./delivery-command.ts')).registerDeliveryCommands,
    (await import('./delivery-logs-command.ts')).registerDeliveryLogsCommand,
    (await import('./delivery-eta-command.ts')).registerDeliveryEtaCommand,
  ],
  demo: async () => [(await import('./demo-command.ts')).registerDemoCommands],
  start: async () => [(await import('./start-command.ts')).registerStartCommands],
  config: async () => [(await import('./config-command.ts')).registerConfigCommands],
  workflows: async () => [(await import('./workflows-command.ts')).registerWorkflowsCommands],
  db: async () => [(await import('./db-command.ts')).registerDbCommands],
  bounce: async () => [(await import('./bounce-command.ts')).registerBounceCommands],
  quarantine: async () => [(await import('./quarantine-command.ts')).registerQuarantineCommands],
  rules: async () => [(await import('./rules-command.ts')).registerRulesCommands],
  mx: async () => [(await import('./mx-command.ts')).registerMxCommands],
  import: async () => [(await import('./import-command.ts')).registerImportCommands],
  lists: async () => [(await import('./list-command.ts')).registerListCommands],
  tracking: async () => [(await import('./tracking-command.ts')).registerTrackingCommands],
  mid: async () => [(await import('./mid-command.ts')).registerMidCommands],
  doctor: async () => [(await import('./doctor-command.ts')).registerDoctorCommands],
  sim: async () => [(await import('./sim-command.ts')).registerSimCommands],
  tokens: async () => [(await import('./tokens-command.ts')).registerTokensCommands],
  webhooks: async () => [(await import('./webhooks-command.ts')).registerWebhooksCommands],
};

/** Global options that take a value: the word after them is not the command. */
const optionsWithValue = new Set(['-c', '--config', '--log-format']);

/**
 * The command groups `argv` needs: the one it runs, none for `--version` alone, and every group
 * otherwise (help, and the suggestions for a mistyped command).
 */
export function commandGroupsFor(argv: readonly string[]): string[] {
  for (let i = 2; i < argv.length; i++) {
    const word = argv[i]!;
    if (optionsWithValue.has(word)) i++;
    else if (!word.startsWith('-')) return Object.hasOwn(commandModules, word) ? [word] : Object.keys(commandModules);
  }
  return argv.includes('-V') || argv.includes('--version') ? [] : Object.keys(commandModules);
}

/** Builds the `herald` command tree with the given command groups (each lives in its own file). */
export async function buildProgram(
  context: CliContext,
  groups: readonly string[] = Object.keys(commandModules),
): Promise<Command> {
  const program = new Command('herald')
    .description('Herald: self-hosted email delivery platform')
    .version(heraldVersion(), '-V, --version', 'print the Herald version')
    .option('-c, --config <file>', 'configuration file (default: $HERALD_CONFIG or ./herald.yaml)')
    .addOption(
      new Option('--log-format <format>', 'logs: human-readable on a terminal, JSON lines otherwise (auto)')
        .choices(logFormats)
        .default('auto'),
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => context.output.out(s.trimEnd()),
      writeErr: (s) => context.output.err(s.trimEnd()),
      // Argument-parser errors carry their code like every other error.
      outputError: (s, write) => write(s.replace(/^error: /, 'error: CLI_USAGE: ')),
    });
  for (const registrars of await Promise.all(groups.map((group) => commandModules[group]!())))
    for (const register of registrars) register(program, context);
  return program;
}

export async function runCli(argv: string[], context: CliContext = defaultCliContext()): Promise<number> {
  try {
    const program = await buildProgram(context, commandGroupsFor(argv));
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CliExit) return error.exitCode;
    if (error instanceof CommanderError) {
      if (error.exitCode !== 0 && argv.includes('--json'))
        printJson(context, { error: { code: 'CLI_USAGE', message: error.message.replace(/^error: /, '') } });
      return error.exitCode;
    }
    return reportError(context, error, argv.includes('--json'));
  }
}

/** The version of package.json. */
export function heraldVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
