import { Command, CommanderError } from 'commander';
import { CliExit, defaultCliContext, reportError, type CliContext } from './context.ts';
import { registerBounceCommands } from './bounce-command.ts';
import { registerQuarantineCommands } from './quarantine-command.ts';
import { registerDbCommands } from './db-command.ts';
import { registerDeliveryCommands } from './delivery-command.ts';
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

/** Builds the `herald` command tree. Each command group lives in its own file. */
export function buildProgram(context: CliContext): Command {
  const program = new Command('herald')
    .description('Herald: self-hosted email delivery platform')
    .option('-c, --config <file>', 'configuration file (default: $HERALD_CONFIG or ./herald.yaml)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => context.output.out(s.trimEnd()), writeErr: (s) => context.output.err(s.trimEnd()) });
  registerDeliveryCommands(program, context);
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
  return program;
}

export async function runCli(argv: string[], context: CliContext = defaultCliContext()): Promise<number> {
  const program = buildProgram(context);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CliExit) return error.exitCode;
    if (error instanceof CommanderError) return error.exitCode;
    return reportError(context, error, argv.includes('--json'));
  }
}
