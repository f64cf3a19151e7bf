import type { Command } from 'commander';
import {
  createSubscription,
  listSubscriptionViews,
  removeSubscription,
  maxOverlapHours,
  resumeSubscriptionById,
  rotateSubscriptionSecret,
  webhookKinds,
} from '../webhooks/subscriptions.ts';
import { AppError } from '../common/errors.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald webhooks create|list|delete|resume`: event webhook subscriptions (docs/webhooks.md). The
// api role sends the events.

const collect = (value: string, previous: string[]): string[] => [
  ...previous,
  ...value.split(',').map((v) => v.trim()),
];

/** Digits only: Number('') and Number(' ') are 0, and 1.5 or 1e3 hours are not meant. */
function overlapHours(text: string): number {
  if (!/^\d{1,4}$/.test(text) || Number(text) > maxOverlapHours)
    throw new AppError(
      'INPUT_INVALID',
      `--overlap-hours: a whole number of hours from 0 to ${maxOverlapHours} (got "${text.slice(0, 20)}")`,
    );
  return Number(text);
}

export function registerWebhooksCommands(program: Command, context: CliContext): void {
  const webhooks = program.command('webhooks').description('event webhooks: subscriptions, their failures and backlog');

  webhooks
    .command('create <url>')
    .description('subscribe a URL; prints the HMAC secret once')
    .option('--event <kind>', `event kind (${webhookKinds.join(', ')}); repeatable or comma-separated`, collect, [])
    .option('--secret <secret>', 'HMAC key (default: generated)')
    .option('--json', 'print the subscription with its secret')
    .action(async (url: string, options: { event: string[]; secret?: string; json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const created = await createSubscription(
          herald.store,
          { url, events: options.event.length ? options.event : [...webhookKinds], secret: options.secret },
          herald.clock.now(),
          herald.config.webhooks,
        );
        if (options.json) return printJson(context, created);
        context.output.out(`webhook ${created.id}: ${created.url} (${created.events.join(', ')})`);
        context.output.out(`secret: ${created.secret}`);
      });
    });

  webhooks
    .command('rotate-secret <id>')
    .description('a new HMAC secret, printed once; the previous one keeps signing too for --overlap-hours')
    .option('--secret <secret>', 'the new HMAC key (default: generated)')
    .option('--overlap-hours <hours>', 'hours the previous secret keeps signing (0: stop it at once, for a leak)', '24')
    .option('--json', 'print the subscription with its new secret')
    .action(
      async (id: string, options: { secret?: string; overlapHours: string; json?: boolean }, command: Command) => {
        await withHerald(context, command, async (herald) => {
          const rotated = await rotateSubscriptionSecret(
            herald.store,
            positiveInteger(id, 'webhook id'),
            { secret: options.secret, overlapHours: overlapHours(options.overlapHours) },
            herald.clock.now(),
          );
          if (options.json) return printJson(context, rotated);
          context.output.out(`webhook ${rotated.id}: new secret: ${rotated.secret}`);
          context.output.out(
            rotated.previousSecretUntil
              ? `the previous secret signs too until ${rotated.previousSecretUntil}`
              : 'the previous secret no longer signs',
          );
        });
      },
    );

  webhooks
    .command('list', { isDefault: true })
    .description('subscriptions: state, failures in a row, last error, events waiting')
    .option('--json', 'print {"webhooks":[...]}')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const views = await listSubscriptionViews(herald.store);
        if (options.json) return printJson(context, { webhooks: views });
        if (views.length === 0)
          return context.output.out('no webhooks: herald webhooks create URL --event delivery.state');
        for (const w of views)
          context.output.out(
            `${String(w.id).padStart(4)}  ${w.state.padEnd(6)}  ${w.backlog} waiting  ${w.consecutiveFailures} failures${w.lastError ? ` (${w.lastError})` : ''}  ${w.url}  ${w.events.join(',')}`,
          );
      });
    });

  for (const [verb, action, description] of [
    ['delete', removeSubscription, 'delete a subscription and its waiting events'],
    ['resume', resumeSubscriptionById, 'resume a paused subscription; its waiting events are sent'],
  ] as const) {
    webhooks
      .command(`${verb} <id>`)
      .description(description)
      .option('--json', 'print the subscription')
      .action(async (id: string, options: { json?: boolean }, command: Command) => {
        await withHerald(context, command, async (herald) => {
          const view = await action(herald.store, positiveInteger(id, 'webhook id'));
          if (options.json) printJson(context, view);
          else context.output.out(`webhook ${view.id} ${verb === 'delete' ? 'deleted' : 'resumed'}`);
        });
      });
  }
}
