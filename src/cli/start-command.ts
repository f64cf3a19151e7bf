import type { Command } from 'commander';
import { knownRoles, parseRoles, startRoles, stopRoles } from '../roles.ts';
import { withHerald, type CliContext } from './context.ts';

export function registerStartCommands(program: Command, context: CliContext): void {
  program
    .command('start')
    .description('run Herald\'s roles on the configured database until SIGTERM or Ctrl-C')
    .option('--roles <list>', `comma-separated roles (${knownRoles().join(', ')}), or all`, 'all')
    .action(async (options, command: Command) => {
      const names = parseRoles(options.roles);
      await withHerald(context, command, async (herald) => {
        const roles = await startRoles(herald, names);
        context.output.err(`herald ${herald.nodeId}: running ${names.join(', ')} on ${herald.store.location}`);
        const signal = await new Promise<string>((resolve) => {
          process.once('SIGTERM', () => resolve('SIGTERM'));
          process.once('SIGINT', () => resolve('SIGINT'));
        });
        context.output.err(`${signal}: finishing open SMTP transactions and stopping`);
        await stopRoles(herald, roles);
      });
    });
}
