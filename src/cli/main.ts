import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { logFormats } from '../common/logger.ts';
import { CliExit, defaultCliContext, printJson, reportError, type CliContext } from './context.ts';
import { registerBounceCommands } from './bounce-command.ts';
import { registerQuarantineCommands } from './quarantine-command.ts';
import { registerDbCommands } from './db-command.ts';
import { registerDeliveryCommands } from './delivery-command.ts';
import { registerDeliveryLogsCommand } from './delivery-logs-command.ts';
import { registerDeliveryEtaCommand } from './delivery-eta-command.ts';
import { registerConfigCommands } from './config-command.ts';
import { registerDemoCommands } from './demo-command.ts';
import { registerMidCommands } from './mid-command.ts';
import { registerStartCommands } from './start-command.ts';
import { registerWorkflowsCommands } from './workflows-command.ts';
import { registerMxCommands } from './mx-command.ts';
import { registerRulesCommands } from './rules-command.ts';
import { registerImportCommands } from './import-command.ts';
import { registerListCommands } from './list-command.ts';
import { registerTrackingCommands } from './tracking-command.ts';
import { registerDoctorCommands } from './doctor-command.ts';
import { registerSimCommands } from './sim-command.ts';
import { registerTokensCommands } from './tokens-command.ts';
import { registerWebhooksCommands } from './webhooks-command.ts';

/** Builds the `herald` command tree. Each command group lives in its own file. */
export function buildProgram(context: CliContext): Command {
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
  registerDeliveryCommands(program, context);
  registerDeliveryLogsCommand(program, context);
  registerDeliveryEtaCommand(program, context);
  registerDemoCommands(program, context);
  registerStartCommands(program, context);
  registerConfigCommands(program, context);
  registerWorkflowsCommands(program, context);
  registerDbCommands(program, context);
  registerBounceCommands(program, context);
  registerQuarantineCommands(program, context);
  registerRulesCommands(program, context);
  registerMxCommands(program, context);
  registerImportCommands(program, context);
  registerListCommands(program, context);
  registerTrackingCommands(program, context);
  registerMidCommands(program, context);
  registerDoctorCommands(program, context);
  registerSimCommands(program, context);
  registerTokensCommands(program, context);
  registerWebhooksCommands(program, context);
  return program;
}

export async function runCli(argv: string[], context: CliContext = defaultCliContext()): Promise<number> {
  const program = buildProgram(context);
  try {
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
