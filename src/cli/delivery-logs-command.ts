import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { getDelivery } from '../delivery/delivery-store.ts';
import { listDeliveryLogs, releaseExpiredClaims, type DeliveryLogFilters } from '../delivery/delivery-logs-store.ts';
import type { DeliveryLogStatus } from '../store/tables.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald delivery logs N`: one line per delivery log with its last reply, filtered the way doctor
// findings point at them (`logs` of a finding is such a command).

const statuses: DeliveryLogStatus[] = ['pending', 'sending', 'sent', 'failed', 'ignored', 'cancelled'];

interface LogsOptions {
  status?: string;
  domain?: string;
  mx?: string;
  code?: string;
  enhanced?: string;
  reason?: string;
  category?: string;
  limit: string;
  json?: boolean;
}

export function registerDeliveryLogsCommand(program: Command, context: CliContext): void {
  const delivery = program.commands.find((command) => command.name() === 'delivery');
  if (!delivery) throw new Error('the delivery command group must be registered first');
  registerReleaseStuckCommand(delivery, context);
  delivery
    .command('logs <id>')
    .description('the delivery logs of a delivery with their last reply (the evidence behind a doctor finding)')
    .option('--status <status>', `one of ${statuses.join(', ')}`)
    .option('--domain <domain>', 'recipient domain')
    .option('--mx <host>', 'MX host of the last attempt')
    .option('--code <code>', 'SMTP reply code of the last attempt')
    .option('--enhanced <status>', 'enhanced status of the last reply, e.g. 5.7.1')
    .option('--reason <reason>', 'failure reason, e.g. user_unknown')
    .option('--category <category>', 'failure category, e.g. blocked')
    .option('--limit <n>', 'at most this many logs', '100')
    .option('--json', 'print NDJSON, one log per line')
    .action(async (id: string, options: LogsOptions, command: Command) => {
      const deliveryId = positiveInteger(id, 'delivery id');
      const filters = parseFilters(options);
      const limit = positiveInteger(options.limit, '--limit');
      await withHerald(context, command, async (herald) => {
        await getDelivery(herald.store, deliveryId);
        const logs = await listDeliveryLogs(herald.store, deliveryId, filters, limit);
        for (const log of logs) {
          if (options.json) printJson(context, log);
          else
            context.output.out(
              [
                String(log.id).padStart(8),
                log.status.padEnd(9),
                log.email,
                `attempts ${log.attempts}`,
                log.mxHost ?? log.domain,
                [log.code ?? '', log.enhanced ?? '', log.reply ?? ''].filter((x) => x !== '').join(' ') || '-',
              ].join('  '),
            );
        }
        if (!options.json)
          context.output.out(
            `${logs.length} log(s)${logs.length === limit ? ` (first ${limit}: --limit for more)` : ''}`,
          );
      });
    });
}

export function registerReleaseStuckCommand(delivery: Command, context: CliContext): void {
  delivery
    .command('release-stuck')
    .description('give back to pending the messages left sending by MTA nodes whose claim expired (never a live claim)')
    .option('--json', 'print {"released","nodes"}')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const result = await releaseExpiredClaims(herald.store, herald.clock.now());
        if (options.json) printJson(context, result);
        else
          context.output.out(
            result.released === 0
              ? 'no message is stuck in sending with an expired claim'
              : `released ${result.released} message(s) claimed by ${result.nodes.join(', ')}: pending again, attempts unchanged`,
          );
      });
    });
}

function parseFilters(options: LogsOptions): DeliveryLogFilters {
  const filters: DeliveryLogFilters = {};
  if (options.status !== undefined) {
    if (!statuses.includes(options.status as DeliveryLogStatus))
      throw new AppError('INPUT_INVALID', `--status must be one of ${statuses.join(', ')} (got "${options.status}")`);
    filters.status = options.status as DeliveryLogStatus;
  }
  if (options.code !== undefined) {
    const code = Number(options.code);
    if (!/^[2-5]\d\d$/.test(options.code))
      throw new AppError('INPUT_INVALID', `--code must be a three-digit SMTP code (got "${options.code}")`);
    filters.code = code;
  }
  if (options.domain !== undefined) filters.domain = options.domain;
  if (options.mx !== undefined) filters.mxHost = options.mx;
  if (options.enhanced !== undefined) filters.enhanced = options.enhanced;
  if (options.reason !== undefined) filters.reason = options.reason;
  if (options.category !== undefined) filters.category = options.category;
  return filters;
}
