import type { Command } from 'commander';
import { listLists } from '../audience/audience-store.ts';
import { printJson, withHerald, type CliContext } from './context.ts';

// `herald lists`: the lists and how many recipients each holds.

export function registerListCommands(program: Command, context: CliContext): void {
  program
    .command('lists')
    .description('show the recipient lists with their sizes')
    .option('--json', 'NDJSON: {"id","name","recipients","createdAt"} per list')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const lists = await listLists(herald.store);
        if (options.json) {
          for (const list of lists)
            printJson(context, {
              id: list.id,
              name: list.name,
              recipients: list.recipients,
              createdAt: new Date(list.createdAt).toISOString(),
            });
          return;
        }
        if (lists.length === 0) {
          context.output.out('no lists yet: herald import recipients FILE.csv --list NAME');
          return;
        }
        const width = Math.max(4, ...lists.map((list) => list.name.length));
        context.output.out(`${'ID'.padStart(5)}  ${'NAME'.padEnd(width)}  ${'RECIPIENTS'.padStart(10)}  CREATED`);
        for (const list of lists)
          context.output.out(
            `${String(list.id).padStart(5)}  ${list.name.padEnd(width)}  ${String(list.recipients).padStart(10)}  ${new Date(list.createdAt).toISOString()}`,
          );
      });
    });
}
