import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { deliveryExists } from '../delivery/delivery-store.ts';
import { consolidateDelivery, consolidatePending } from '../tracking/consolidation-run.ts';
import { deliveryTrackingStats, formatTrackingStats } from '../tracking/stats.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

/** `herald delivery stats ID [--json] [--refresh]`: called by registerDeliveryCommands on its group. */
export function registerDeliveryStatsCommand(delivery: Command, context: CliContext): void {
  delivery
    .command('stats <id>')
    .description(
      'tracking indicators of a delivery: opens, clicks, reactivity, opt-outs, by link and domain, with and without automated traffic',
    )
    .option('--refresh', "consolidate this delivery now instead of showing the tracking workflow's last figures")
    .option('--json', 'print the indicators as one JSON object')
    .action(async (id: string, options: { json?: boolean; refresh?: boolean }, command: Command) => {
      const deliveryId = positiveInteger(id, 'delivery id');
      await withHerald(context, command, async (herald) => {
        if (!(await deliveryExists(herald.store, deliveryId)))
          throw new AppError('NOT_FOUND', `no delivery ${deliveryId}`);
        if (options.refresh)
          await consolidateDelivery(
            herald.store,
            deliveryId,
            herald.config.tracking.openDedupSeconds * 1_000,
            herald.clock.now(),
          );
        const stats = await deliveryTrackingStats(herald.store, deliveryId);
        if (options.json) printJson(context, stats);
        else {
          for (const line of formatTrackingStats(stats)) context.output.out(line);
          if (!options.refresh)
            context.output.out(
              stats.computedAt === null
                ? `  indicators not consolidated yet: \`herald delivery stats ${deliveryId} --refresh\` consolidates now`
                : `  indicators as consolidated ${Math.round((herald.clock.now() - stats.computedAt) / 60_000)} min ago by the tracking workflow (hourly); \`herald delivery stats ${deliveryId} --refresh\` consolidates now`,
            );
        }
      });
    });
}

/** `herald tracking consolidate`: runs the tracking workflow's consolidation once, now. */
export function registerTrackingCommands(program: Command, context: CliContext): void {
  const tracking = program
    .command('tracking')
    .description('tracking: consolidate raw opens and clicks into indicators');
  tracking
    .command('consolidate')
    .description('consolidate raw tracking events past the watermark into per-delivery indicators, now')
    .option('--json', 'print the summary as JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const summary = await consolidatePending(
          herald.store,
          herald.config.tracking.openDedupSeconds * 1_000,
          herald.clock.now(),
        );
        if (options.json) printJson(context, summary);
        else
          context.output.out(
            `consolidated ${summary.events} event(s) of ${summary.deliveries.length} deliveries (watermark ${summary.watermark})`,
          );
      });
    });
}
