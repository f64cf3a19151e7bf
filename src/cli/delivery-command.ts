import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { listLists } from '../audience/audience-store.ts';
import { compileContent, personalizationOf } from '../delivery/content.ts';
import type { DeliveryDefinition } from '../delivery/definition.ts';
import { targetBatch } from '../delivery/preparation-store.ts';
import { readShapingSnapshots } from '../shaping/stats-store.ts';
import { deliveryPathShares, describeShares, mergeSnapshots } from '../shaping/stats-view.ts';
import { registerDeliveryFollowCommands } from './delivery-follow-command.ts';
import { registerDeliveryPriorityCommand } from './delivery-priority-command.ts';
import { AppError } from '../common/errors.ts';
import { definitionFromFlags, parseIsoTime, readDefinitionFile } from '../delivery/definition.ts';
import { deleteDelivery, startDelivery } from '../delivery/lifecycle.ts';
import { actOnDelivery, prepareConfigured } from '../delivery/operator-actions.ts';
import { deliveryView } from '../delivery/delivery-view.ts';
import { formatSummary, summarizeDelivery } from '../delivery/summary.ts';
import { shownDeliveryEta } from '../delivery/delivery-eta.ts';
import { etaJson, formatEta } from './delivery-eta-command.ts';
import type { Herald } from '../main.ts';
import { describeForward } from '../midsourcing/state-forward.ts';
import { createDelivery, deliveryTargetSize, listDeliveries } from '../delivery/delivery-store.ts';
import type { DeliveryRow } from '../store/tables.ts';
import { CliExit, interruptible, positiveInteger, printJson, withHerald, type CliContext } from './context.ts';
import { registerDeliveryStatsCommand } from './tracking-command.ts';

export function registerDeliveryCommands(program: Command, context: CliContext): void {
  const delivery = program.command('delivery').description('create, prepare, start and follow deliveries');
  registerDeliveryStatsCommand(delivery, context);
  registerDeliveryFollowCommands(delivery, context);
  registerDeliveryPriorityCommand(delivery, context);

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
    .option('--priority <n>', 'on MX paths shared with other deliveries, higher sends first (0–9, default 5)', Number)
    .option('--weight <n>', 'share among deliveries of the same priority (1–100, default 1)', Number)
    .option('--json', 'print the created delivery as JSON')
    .action(async (options, command: Command) => {
      const definition = options.file ? readDefinitionFile(options.file) : definitionFromFlags(flagsOf(options));
      await withHerald(
        context,
        command,
        async (herald) => {
          await checkAgainstList(herald, definition);
          const row = await createDelivery(
            herald.store,
            definition,
            { validityHours: herald.config.delivery.validityHours },
            herald.clock.now(),
          );
          if (options.json) printJson(context, deliveryJson(row));
          else context.output.out(`created delivery ${row.id} "${row.name}" (edited)`);
        },
        { create: true },
      );
    });

  delivery
    .command('prepare <id>')
    .description('extract the target, apply exclusions, check personalization, create the delivery logs')
    .option('--json', 'print the outcome as JSON')
    .action(async (id: string, options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const outcome = await interruptible(context, (signal) =>
          prepare(herald, positiveInteger(id, 'delivery id'), signal),
        );
        if (outcome.kind === 'failed')
          throw new AppError(
            'PREPARATION_FAILED',
            `delivery ${id} preparation failed: ${outcome.code}: ${outcome.error}`,
            {
              details: { deliveryId: outcome.deliveryId, cause: outcome.code, state: 'preparation_failed' },
            },
          );
        if (options.json) printJson(context, outcome);
        else {
          const excluded = Object.entries(outcome.counts.excluded)
            .map(([reason, n]) => `${reason} ${n}`)
            .join(', ');
          context.output.out(
            `delivery ${id} prepared: ${outcome.counts.prepared} delivery logs from ${outcome.counts.target} recipients (excluded: ${excluded})`,
          );
          for (const warning of outcome.warnings) context.output.err(`warning: ${warning.code}: ${warning.message}`);
        }
      });
    });

  delivery
    .command('start <id>')
    .description('start sending a prepared delivery, now or at --at')
    .option('--at <time>', 'ISO 8601 start time with its offset (2026-06-01T09:00:00+02:00)')
    .option('--json', 'print the delivery as JSON')
    .action(async (id: string, options, command: Command) => {
      const at = options.at === undefined ? undefined : parseIsoTime(options.at, '--at');
      await runAction(context, command, options.json, async (herald) => {
        const now = herald.clock.now();
        if (at !== undefined && at < now)
          context.output.err(
            `warning: --at ${new Date(at).toISOString()} is in the past (now ${new Date(now).toISOString()}): the delivery starts at once`,
          );
        const row = await startDelivery(herald.store, positiveInteger(id, 'delivery id'), now, at);
        if (row.execution_peer === null && (await readShapingSnapshots(herald.store, now - 300_000)).length === 0)
          context.output.err(
            'warning: no MTA is running (no MTA node wrote its shaping snapshot in the last 5 min): nothing is sent until one runs, `herald start` (or --roles mta)',
          );
        return row;
      });
    });

  for (const [name, description] of [
    ['pause', 'pause sending (claims in flight finish); forwarded to the execution instance of a pushed delivery'],
    ['resume', 'resume a paused delivery; forwarded to the execution instance of a pushed delivery'],
    [
      'stop',
      'stop for good; pending delivery logs are cancelled; forwarded to the execution instance of a pushed delivery',
    ],
  ] as const) {
    delivery
      .command(`${name} <id>`)
      .description(description)
      .option('--json', 'print the delivery as JSON (with `forwarding` for a pushed delivery)')
      .action(async (id: string, options, command: Command) => {
        await withHerald(context, command, async (herald) => {
          const { row, forwarding } = await actOnDelivery(herald, positiveInteger(id, 'delivery id'), name);
          if (options.json)
            printJson(context, {
              ...deliveryJson(row),
              forwarding: forwarding.kind === 'not-pushed' ? null : forwarding,
            });
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
      await runAction(context, command, options.json, (herald) =>
        deleteDelivery(herald.store, positiveInteger(id, 'delivery id'), herald.clock.now()),
      );
    });

  delivery
    .command('show <id>')
    .description('state and counts of one delivery')
    .option('--json', 'print as JSON')
    .action(async (id: string, options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const summary = await summarizeDelivery(herald.store, positiveInteger(id, 'delivery id'));
        const eta = await shownDeliveryEta(herald, summary.deliveryId, summary.state);
        const now = herald.clock.now();
        const shaping = mergeSnapshots(await readShapingSnapshots(herald.store, now - 300_000), now);
        const paths = deliveryPathShares(shaping, summary.deliveryId);
        if (options.json) printJson(context, { ...summary, ...(eta !== undefined && { eta: etaJson(eta) }), paths });
        else {
          for (const line of formatSummary(summary)) context.output.out(line);
          if (eta) for (const line of formatEta(eta).slice(0, 2)) context.output.out(line);
          for (const path of paths)
            context.output.out(`  path ${path.pathId} [${path.nodeId}], last 5 min: ${describeShares(path.shares)}`);
        }
      });
    });

  delivery
    .command('list')
    .description('the latest deliveries')
    .option('--json', 'print NDJSON, one delivery per line')
    .action(async (options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const rows = await listDeliveries(herald.store);
        if (options.json) {
          for (const row of rows) printJson(context, deliveryJson(row));
          return;
        }
        if (rows.length === 0) {
          context.output.out('no deliveries yet: herald delivery create --file DEFINITION.yaml');
          return;
        }
        context.output.out(`${'ID'.padStart(6)}  ${'STATE'.padEnd(18)} NAME`);
        for (const row of rows)
          context.output.out(`${String(row.id).padStart(6)}  ${row.state.padEnd(18)} ${row.name}`);
      });
    });
}

/**
 * When the list is known, personalization is checked at creation against its first recipient (as
 * preparation will for every one): an unknown variable, or a missing list, is an error now rather
 * than a failed preparation later.
 */
async function checkAgainstList(herald: Herald, definition: DeliveryDefinition): Promise<void> {
  if (definition.listName === null) return;
  const lists = await listLists(herald.store);
  const list = lists.find((l) => l.name === definition.listName);
  if (!list)
    throw new AppError(
      'DELIVERY_NO_TARGET',
      `list "${definition.listName}" does not exist in database ${herald.store.location} (lists: ${lists.map((l) => l.name).join(', ') || 'none'}; import recipients into it first)`,
    );
  const [first] = await targetBatch(herald.store, list.id, 0, 1);
  if (!first) return;
  const data = { ...personalizationOf(first.email, first.data), mirror_url: 'https://tracking.invalid/m/preview' };
  try {
    compileContent({ subject: definition.subject, html: definition.html, text: definition.text }).render(
      data,
      first.email,
    );
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== 'TEMPLATE_RENDER') throw error;
    throw new AppError(
      'TEMPLATE_RENDER',
      `${error.message}; list "${list.name}" has the columns ${Object.keys(data).join(', ')} (give a default, e.g. {{ name | default: "there" }}, or import the column)`,
      { cause: error.cause, details: { ...error.details, list: list.name } },
    );
  }
}

export async function prepare(herald: Herald, id: number, signal?: AbortSignal) {
  const bar = await preparationProgress(herald, id);
  try {
    return await prepareConfigured(
      herald,
      id,
      (progress) => bar?.update(progress.read, { prepared: progress.prepared }),
      signal,
    );
  } finally {
    bar?.stop();
  }
}

/** A progress bar on a terminal (stderr), sized by the target list. */
async function preparationProgress(herald: Herald, deliveryId: number) {
  if (!process.stderr.isTTY) return undefined;
  const target = await deliveryTargetSize(herald.store, deliveryId);
  if (target === undefined) return undefined;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: 'preparing |{bar}| {percentage}% | {value}/{total} recipients, {prepared} logs',
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(target, 1), 0, { prepared: 0 });
  return bar;
}

async function runAction(
  context: CliContext,
  command: Command,
  json: boolean | undefined,
  action: (herald: Herald) => Promise<DeliveryRow>,
) {
  await withHerald(context, command, async (herald) => {
    const row = await action(herald);
    if (json) printJson(context, deliveryJson(row));
    else context.output.out(`delivery ${row.id} is ${row.state}`);
  });
}

export const deliveryJson = deliveryView;

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
    priority: options.priority,
    weight: options.weight,
  };
}
