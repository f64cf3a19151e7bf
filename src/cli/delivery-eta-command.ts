import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { deliveryEta, etaListedGroups, etaView } from '../delivery/delivery-eta.ts';
import { parseRuleOverride, type Eta } from '../delivery/eta.ts';
import { duration } from '../doctor/finding.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald delivery eta N`: when a prepared or sending delivery should finish and what bounds it;
// `--set RULE.maxMessagesPerHour=N` and `--add-affinity NAME` recompute it under changed rules
// without changing anything.

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerDeliveryEtaCommand(program: Command, context: CliContext): void {
  const delivery = program.commands.find((command) => command.name() === 'delivery');
  if (!delivery) throw new Error('the delivery command group must be registered first');
  delivery
    .command('eta <id>')
    .description('estimated finish of a delivery from its pending messages, the MX rules, backoffs and validity')
    .option('--set <RULE.maxMessagesPerHour=N>', 'what-if: assume this rate for an MX rule (repeatable)', collect)
    .option('--add-affinity <name>', "what-if: also send from this affinity's addresses (repeatable)", collect)
    .option('--json', 'print the estimate as JSON')
    .action(
      async (id: string, options: { set?: string[]; addAffinity?: string[]; json?: boolean }, command: Command) => {
        const deliveryId = positiveInteger(id, 'delivery id');
        const ruleOverrides = new Map<string, number>();
        for (const text of options.set ?? []) {
          const parsed = parseRuleOverride(text);
          if (typeof parsed === 'string') throw new AppError('INPUT_INVALID', `--set: ${parsed}`);
          ruleOverrides.set(parsed.rule, parsed.maxMessagesPerHour);
        }
        await withHerald(context, command, async (herald) => {
          const eta = await deliveryEta(herald, deliveryId, {
            ruleOverrides,
            addAffinities: options.addAffinity ?? [],
          });
          const whatIf = ruleOverrides.size > 0 || (options.addAffinity ?? []).length > 0;
          if (options.json) printJson(context, { ...etaJson(eta), whatIf });
          else for (const line of formatEta(eta, whatIf)) context.output.out(line);
        });
      },
    );
}

/** The ETA as JSON: see etaView (src/delivery/delivery-eta.ts). */
export const etaJson = etaView;

export function formatEta(eta: Eta, whatIf = false): string[] {
  const head = `delivery ${eta.deliveryId}${whatIf ? ' (what-if: nothing changed)' : ''}`;
  if (eta.finishAt === null) return [`${head}: nothing pending`];
  const lines = [
    `${head}: ${eta.pending} pending, finishes about ${new Date(eta.finishAt).toISOString()} (in ${duration(eta.finishAt - eta.computedAt)})`,
  ];
  if (eta.boundBy)
    lines.push(
      `bounded by MX rule "${eta.boundBy.rule}" (${eta.boundBy.rateKey}): ${eta.boundBy.pending} messages at ${eta.boundBy.messagesPerHour}/h${eta.boundBy.ahead > 0 ? `, after ${eta.boundBy.ahead} of deliveries started earlier` : ''}`,
    );
  for (const group of eta.groups.slice(0, etaListedGroups))
    lines.push(
      `  ${group.rateKey.padEnd(28)} ${String(group.pending).padStart(8)} pending ${String(group.messagesPerHour).padStart(8)}/h ${String(group.hours).padStart(8)} h  ${group.domains.slice(0, 5).join(', ')}${group.domains.length > 5 ? ', …' : ''}`,
    );
  if (eta.groups.length > etaListedGroups)
    lines.push(`  … ${eta.groups.length - etaListedGroups} more rate keys, each finishing sooner than those listed`);
  if (eta.validUntil !== null)
    lines.push(
      eta.expiring > 0
        ? `${eta.expiring} messages cannot go before the validity ends (${new Date(eta.validUntil).toISOString()}): they will expire`
        : `within the validity (until ${new Date(eta.validUntil).toISOString()})`,
    );
  return lines;
}
