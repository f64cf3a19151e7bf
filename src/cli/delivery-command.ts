import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { sql } from 'kysely';
import { AppError } from '../common/errors.ts';
import { validateAddress } from '../audience/address.ts';
import { definitionFromFlags, readDefinitionFile } from '../delivery/definition.ts';
import { deleteDelivery, pauseDelivery, resumeDelivery, startDelivery, stopDelivery } from '../delivery/lifecycle.ts';
import { prepareDelivery } from '../delivery/preparation.ts';
import { formatSummary, summarizeDelivery } from '../delivery/summary.ts';
import type { Herald } from '../main.ts';
import { describeForward, forwardOperatorAction } from '../midsourcing/state-forward.ts';
import { createDelivery, listDeliveries } from '../store/delivery-queries.ts';
import { preparationStore } from '../store/preparation-queries.ts';
import type { DeliveryRow } from '../store/tables.ts';
import { CliExit, positiveInteger, printJson, withHerald, type CliContext } from './context.ts';
import { registerDeliveryStatsCommand } from './tracking-command.ts';

export function registerDeliveryCommands(program: Command, context: CliContext): void {
  const delivery = program.command('delivery').description('create, prepare, start and follow deliveries');
  registerDeliveryStatsCommand(delivery, context);

  delivery
    .command('create')
    .description('create a delivery from a YAML/JSON definition file or from flags')
    .option('-f, --file <file>', 'definition file (YAML or JSON)')
    .option('--name <name>')
    .option('--from <address>', 'news@example.com or "Name <news@example.com>"')
    .option('--reply-to <address>')
    .option('--subject <template>', 'Liquid template')
    .option('--html-file <file>', 'HTML body (Liquid template)')
    .option('--text-file <file>', 'text body (Liquid template)')
    .option('--list <name>', 'target list')
    .option('--validity-hours <hours>', 'retry soft failures for this long', Number)
    .option('--affinity <name>', 'source IP pool')
    .option('--json', 'print the created delivery as JSON')
    .action(async (options, command: Command) => {
      const definition = options.file ? readDefinitionFile(options.file) : definitionFromFlags(flagsOf(options));
      await withHerald(context, command, async (herald) => {
        const row = await createDelivery(herald.store, definition, { validityHours: herald.config.delivery.validityHours }, herald.clock.now());
        if (options.json) printJson(context, deliveryJson(row));
        else context.output.out(`created delivery ${row.id} "${row.name}" (edited)`);
      });
    });

  delivery
    .command('prepare <id>')
    .description('extract the target, apply exclusions, check personalization, create the delivery logs')
    .option('--json', 'print the outcome as JSON')
    .action(async (id: string, options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const outcome = await prepare(herald, positiveInteger(id, 'delivery id'));
        if (options.json) printJson(context, outcome);
        else if (outcome.kind === 'prepared') {
          const excluded = Object.entries(outcome.counts.excluded).map(([reason, n]) => `${reason} ${n}`).join(', ');
          context.output.out(`delivery ${id} prepared: ${outcome.counts.prepared} delivery logs from ${outcome.counts.target} recipients (excluded: ${excluded})`);
        } else context.output.err(`delivery ${id} preparation failed: ${outcome.error}`);
        if (outcome.kind === 'failed') throw new CliExit(1);
      });
    });

  delivery
    .command('start <id>')
    .description('start sending a prepared delivery, now or at --at')
    .option('--at <time>', 'ISO 8601 start time')
    .option('--json', 'print the delivery as JSON')
    .action(async (id: string, options, command: Command) => {
      const at = options.at === undefined ? undefined : parseTime(options.at);
      await runAction(context, command, options.json, (herald) => startDelivery(herald.store, positiveInteger(id, 'delivery id'), herald.clock.now(), at));
    });

  for (const [name, action, description] of [
    ['pause', pauseDelivery, 'pause sending (claims in flight finish); forwarded to the execution instance of a pushed delivery'],
    ['resume', resumeDelivery, 'resume a paused delivery; forwarded to the execution instance of a pushed delivery'],
    ['stop', stopDelivery, 'stop for good; pending delivery logs are cancelled; forwarded to the execution instance of a pushed delivery'],
  ] as const) {
    delivery
      .command(`${name} <id>`)
      .description(description)
      .option('--json', 'print the delivery as JSON (with `forwarding` for a pushed delivery)')
      .action(async (id: string, options, command: Command) => {
        await withHerald(context, command, async (herald) => {
          const row = await action(herald.store, positiveInteger(id, 'delivery id'), herald.clock.now());
          // Mid-sourcing: the execution instance holding the parts must pause, resume or stop too.
          const forwarding = await forwardOperatorAction(herald.store, herald.config.midsourcing, row.id, { clock: herald.clock });
          if (options.json) printJson(context, { ...deliveryJson(row), forwarding: forwarding.kind === 'not-pushed' ? null : forwarding });
          else context.output.out(`delivery ${row.id} is ${row.state}`);
          if (forwarding.kind === 'failed') context.output.err(describeForward(forwarding));
          else if (forwarding.kind !== 'not-pushed' && !options.json) context.output.out(describeForward(forwarding));
          if (forwarding.kind === 'failed' && !forwarding.retryable) throw new CliExit(1);
        });
      });
  }

  delivery
    .command('delete <id>')
    .description('mark as deleted (purged by the cleanup workflow)')
    .option('--json', 'print the delivery as JSON')
    .action(async (id: string, options, command: Command) => {
      await runAction(context, command, options.json, (herald) => deleteDelivery(herald.store, positiveInteger(id, 'delivery id'), herald.clock.now()));
    });

  delivery
    .command('show <id>')
    .description('state and counts of one delivery')
    .option('--json', 'print as JSON')
    .action(async (id: string, options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const summary = await summarizeDelivery(herald.store, positiveInteger(id, 'delivery id'));
        if (options.json) printJson(context, summary);
        else for (const line of formatSummary(summary)) context.output.out(line);
      });
    });

  delivery
    .command('list')
    .description('the latest deliveries')
    .option('--json', 'print NDJSON, one delivery per line')
    .action(async (options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const rows = await listDeliveries(herald.store);
        for (const row of rows) {
          if (options.json) printJson(context, deliveryJson(row));
          else context.output.out(`${String(row.id).padStart(6)}  ${row.state.padEnd(18)} ${row.name}`);
        }
      });
    });
}

export async function prepare(herald: Herald, id: number) {
  const bar = await preparationProgress(herald, id);
  try {
    return await prepareDelivery(preparationStore(herald.store), id, {
      batchSize: herald.config.delivery.preparationBatchSize,
      clock: herald.clock,
      isValidAddress: (email) => validateAddress(email).ok,
      onProgress: (progress) => bar?.update(progress.read, { prepared: progress.prepared }),
    });
  } finally {
    bar?.stop();
  }
}

/** A progress bar on a terminal (stderr), sized by the target list. */
async function preparationProgress(herald: Herald, deliveryId: number) {
  if (!process.stderr.isTTY) return undefined;
  const delivery = await herald.store.db.selectFrom('deliveries').select('list_id').where('id', '=', deliveryId).executeTakeFirst();
  if (!delivery?.list_id) return undefined;
  const target = await herald.store.db
    .selectFrom('recipients')
    .select(sql<number>`count(*)`.as('n'))
    .where('list_id', '=', delivery.list_id)
    .executeTakeFirstOrThrow();
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'preparing |{bar}| {percentage}% | {value}/{total} recipients, {prepared} logs', hideCursor: true, clearOnComplete: true, fps: 5 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(Number(target.n), 1), 0, { prepared: 0 });
  return bar;
}

async function runAction(context: CliContext, command: Command, json: boolean | undefined, action: (herald: Herald) => Promise<DeliveryRow>) {
  await withHerald(context, command, async (herald) => {
    const row = await action(herald);
    if (json) printJson(context, deliveryJson(row));
    else context.output.out(`delivery ${row.id} is ${row.state}`);
  });
}

export function deliveryJson(row: DeliveryRow) {
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    from: row.from_address,
    listId: row.list_id,
    targetCount: row.target_count,
    excludedCount: row.excluded_count,
    validUntil: row.valid_until === null ? null : new Date(row.valid_until).toISOString(),
    scheduledAt: row.scheduled_at === null ? null : new Date(row.scheduled_at).toISOString(),
    lastError: row.last_error,
  };
}


function parseTime(value: string): number {
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new AppError('INPUT_INVALID', `--at "${value}" is not an ISO 8601 time`);
  return time;
}

function flagsOf(options: Record<string, unknown>): Record<string, unknown> {
  return {
    name: options.name,
    from: options.from,
    replyTo: options.replyTo,
    subject: options.subject,
    htmlFile: options.htmlFile,
    textFile: options.textFile,
    list: options.list,
    validityHours: options.validityHours,
    affinity: options.affinity,
  };
}
