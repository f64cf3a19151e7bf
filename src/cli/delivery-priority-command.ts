import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { setDeliveryShare } from '../delivery/delivery-store.ts';
import { deliveryView } from '../delivery/delivery-view.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald delivery priority ID --priority N --weight N`: how the MX paths a delivery shares with
// others are split (src/mta/fair-share.ts), changed while it runs.

export function registerDeliveryPriorityCommand(delivery: Command, context: CliContext): void {
  delivery
    .command('priority <id>')
    .description(
      'change how MX paths shared with other deliveries are split: priority 0–9 (higher first), weight 1–100',
    )
    .option(
      '--priority <n>',
      'higher sends first on a shared MX path (default of a new delivery: 5)',
      integerFlag('--priority'),
    )
    .option('--weight <n>', 'share among deliveries of the same priority (default 1)', integerFlag('--weight'))
    .option('--json', 'print the delivery as JSON')
    .action(async (id: string, options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const row = await setDeliveryShare(
          herald.store,
          positiveInteger(id, 'delivery id'),
          { priority: options.priority, weight: options.weight },
          herald.clock.now(),
        );
        if (options.json) printJson(context, deliveryView(row));
        else context.output.out(`delivery ${row.id}: priority ${row.priority}, weight ${row.weight}`);
      });
    });
}

function integerFlag(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n))
      throw new AppError('INPUT_INVALID', `${flag}: expected a whole number, got "${value}"`);
    return n;
  };
}
