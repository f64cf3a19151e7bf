import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import type { MidsourcingConfig } from '../midsourcing/config.ts';
import { pushDelivery } from '../midsourcing/push.ts';
import { formatOutboundStatus, outboundStatuses } from '../midsourcing/status.ts';
import { describeForward, forwardPendingStates } from '../midsourcing/state-forward.ts';
import { peerClients, retryPolicyOf, syncAll } from '../midsourcing/sync.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald mid push|status|sync`: the marketing side of mid-sourcing (docs/midsourcing.md). The
// execution side runs as the `mid` role of `herald start`.

function requireMarketing(config: MidsourcingConfig): void {
  if (config.mode !== 'marketing')
    throw new AppError('CONFIG_INVALID', `midsourcing.mode is "${config.mode}"; pushing and pulling need "marketing"`);
}

function choosePeer(config: MidsourcingConfig, name: string | undefined): string {
  if (name !== undefined) return name;
  if (config.peers.length === 1) return config.peers[0]!.name;
  throw new AppError(
    'INPUT_INVALID',
    `--peer is required: ${config.peers.length === 0 ? 'no peer is configured in midsourcing.peers' : `choose among ${config.peers.map((p) => p.name).join(', ')}`}`,
  );
}

export function registerMidCommands(program: Command, context: CliContext): void {
  const mid = program
    .command('mid')
    .description('mid-sourcing: push prepared deliveries to an execution instance and pull their logs back');

  mid
    .command('push')
    .description('push a prepared delivery to an execution instance (resumes an interrupted push)')
    .argument('<delivery>', 'delivery id')
    .option('--peer <name>', 'execution peer (default: the only configured one)')
    .option('--json', 'print the result as one JSON object')
    .action(async (delivery: string, options: { peer?: string; json?: boolean }, command: Command) => {
      const deliveryId = positiveInteger(delivery, 'delivery id');
      await withHerald(context, command, async (herald) => {
        const config = herald.config.midsourcing;
        requireMarketing(config);
        const clients = peerClients(config, herald.clock, herald.logger);
        try {
          const result = await pushDelivery({
            store: herald.store,
            client: clients.get(choosePeer(config, options.peer)),
            deliveryId,
            partSize: config.partSize,
            inFlight: config.partsInFlight,
            retry: retryPolicyOf(config),
            clock: herald.clock,
            logger: herald.logger,
            onPartAcked: (p) => {
              if (!options.json)
                context.output.err(
                  `part ${p.part}: ${p.partsAcked}/${p.partsTotal} parts, ${p.recipientsAcked} recipients`,
                );
            },
          });
          if (options.json) printJson(context, result);
          else
            context.output.out(
              `delivery ${result.deliveryId} pushed to ${result.peer} as ${result.remoteId}: ${result.parts} parts, ${result.recipients} recipients, ${result.recipientsPerSec} recipients/s (${result.attempts} attempts, ${result.timeouts} timeouts, ${result.duplicates} duplicates)`,
            );
        } finally {
          clients.close();
        }
      });
    });

  mid
    .command('status')
    .description(
      'parts pending/acknowledged, build and append latencies, timeouts, last error, log cursor and counters',
    )
    .option('--delivery <id>', 'only this delivery')
    .option('--json', 'print one JSON object per delivery (NDJSON)')
    .action(async (options: { delivery?: string; json?: boolean }, command: Command) => {
      const deliveryId = options.delivery === undefined ? undefined : positiveInteger(options.delivery, 'delivery id');
      await withHerald(context, command, async (herald) => {
        const statuses = await outboundStatuses(herald.store, deliveryId);
        if (deliveryId !== undefined && statuses.length === 0)
          throw new AppError('NOT_FOUND', `delivery ${deliveryId} was never pushed to an execution instance`);
        if (options.json) for (const status of statuses) printJson(context, status);
        else if (statuses.length === 0) context.output.out('no delivery has been pushed to an execution instance');
        else for (const status of statuses) for (const line of formatOutboundStatus(status)) context.output.out(line);
      });
    });

  mid
    .command('sync')
    .description(
      'forward pending pause/resume/stop states, then pull delivery logs and counters of pushed deliveries now (the mid-sync-* workflows do it on schedule)',
    )
    .option('--json', 'print the result as one JSON object')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const config = herald.config.midsourcing;
        requireMarketing(config);
        const states = await forwardPendingStates(herald.store, config, herald.clock, herald.logger);
        if (!options.json) for (const result of states) context.output.err(describeForward(result));
        const logs = await syncAll(herald.store, config, 'logs', herald.clock, undefined, herald.logger);
        const counters = await syncAll(herald.store, config, 'counters', herald.clock, undefined, herald.logger);
        if (options.json) printJson(context, { logs, counters, states });
        else {
          context.output.out(
            `logs: ${logs.synced} deliveries pulled, ${logs.failed.length} failed; counters: ${counters.synced} pulled, ${counters.failed.length} failed`,
          );
          for (const failure of [...logs.failed, ...counters.failed])
            context.output.err(`  delivery ${failure.deliveryId}: ${failure.error}`);
        }
        if (
          logs.failed.length + counters.failed.length + states.filter((result) => result.kind === 'failed').length >
          0
        )
          process.exitCode = 1;
      });
    });
}
