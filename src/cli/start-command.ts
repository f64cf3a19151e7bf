import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { checkConfigSafety, domainOfAddress } from '../config/safety.ts';
import { bounceDomainResolves } from '../config/safety-facts.ts';
import { descriptorUses, judgeOpenFiles } from '../doctor/check-open-files.ts';
import { unfinishedDeliveries } from '../doctor/doctor-store.ts';
import { readOpenFileLimit } from '../doctor/open-file-limit.ts';
import type { Herald } from '../main.ts';
import { knownRoles, parseRoles, startRoles, stopRoles } from '../roles.ts';
import { formatWarnings, unsafeError } from './config-command.ts';
import { withHerald, type CliContext } from './context.ts';
import { startProgressLines } from './start-progress.ts';

export function registerStartCommands(program: Command, context: CliContext): void {
  program
    .command('start')
    .description("run Herald's roles on the configured database until SIGTERM or Ctrl-C")
    .option('--roles <list>', `comma-separated roles (${knownRoles().join(', ')}), or all`, 'all')
    .option('--strict', 'refuse to start (CONFIG_UNSAFE) when a setting is unsafe for real mail')
    .option(
      '--progress-interval <seconds>',
      'a progress line per delivery in progress this often, in seconds (1 to 86400; 0: none)',
      '30',
    )
    .action(async (options: { roles: string; strict?: boolean; progressInterval: string }, command: Command) => {
      const names = parseRoles(options.roles);
      const interval = Number(options.progressInterval);
      // Bounded: past 2^31 ms a Node timer fires every millisecond (an hour typed in ms, 3600000).
      if (!Number.isFinite(interval) || (interval !== 0 && (interval < 1 || interval > 86_400)))
        throw new AppError(
          'INPUT_INVALID',
          `--progress-interval must be a number of seconds from 1 to 86400, or 0 for none (got "${options.progressInterval}")`,
        );
      await withHerald(
        context,
        command,
        async (herald) => {
          if (names.includes('mta')) await checkSafety(context, herald, options.strict === true);
          await checkOpenFiles(context, herald, names);
          const roles = await startRoles(herald, names);
          // Handlers first, then "running" (a supervisor may signal as soon as it reads it).
          const stop = stopSignals(process, (line) => context.output.err(line));
          context.output.err(`herald ${herald.nodeId}: running ${names.join(', ')} on ${herald.store.location}`);
          const stopProgress =
            interval > 0 && names.includes('mta')
              ? startProgressLines(herald, (line) => context.output.err(line), interval * 1000)
              : () => {};
          const signal = await stop.received;
          stopProgress();
          context.output.err(`${signal}: finishing open SMTP transactions and stopping`);
          try {
            await stopRoles(herald, roles);
          } finally {
            stop.dispose();
          }
        },
        { create: true },
      );
    });
}

/**
 * The first SIGTERM or SIGINT starts the stop. The handlers stay for the whole stop, so a second signal
 * does not kill the process mid-stop; it is answered (a repeated Ctrl-C met silence, and the process
 * looked hung) with what the stop waits for and how to end it at once.
 */
export function stopSignals(
  target: Pick<NodeJS.Process, 'on' | 'off'>,
  say: (line: string) => void,
  pid = process.pid,
): { received: Promise<string>; dispose(): void } {
  let first: string | undefined;
  let signalled: (signal: string) => void = () => {};
  const received = new Promise<string>((resolve) => (signalled = resolve));
  const on = (signal: NodeJS.Signals) => {
    if (first === undefined) {
      first = signal;
      signalled(signal);
    } else
      say(
        `${signal}: already stopping since ${first} (open SMTP transactions finish, at most mta.dataTimeoutMs); \`kill -KILL ${pid}\` ends it at once, and the messages of its open transactions may then be sent again after the restart`,
      );
  };
  target.on('SIGTERM', on);
  target.on('SIGINT', on);
  return {
    received,
    dispose: () => {
      target.off('SIGTERM', on);
      target.off('SIGINT', on);
    },
  };
}

/** Names the unsafe settings before mail goes out; with --strict, refuses to start. */
async function checkSafety(context: CliContext, herald: Herald, strict: boolean): Promise<void> {
  const deliveries = await unfinishedDeliveries(herald.store);
  const warnings = checkConfigSafety(herald.config, {
    fromDomains: deliveries
      .filter((d) => d.execution_peer === null)
      .flatMap((d) => domainOfAddress(d.from_address) ?? []),
    bounceDomainResolves: await bounceDomainResolves(herald.config),
  });
  if (warnings.length === 0) return;
  if (strict) throw unsafeError(warnings);
  context.output.err(
    `warning: ${warnings.length} setting${warnings.length === 1 ? ' is' : 's are'} unsafe for real mail (herald start --strict refuses them):`,
  );
  for (const line of formatWarnings(warnings)) context.output.err(line);
}

/** Names the connection caps that add up past the open-file limit (the doctor's open-files check). */
async function checkOpenFiles(context: CliContext, herald: Herald, names: string[]): Promise<void> {
  const verdict = judgeOpenFiles(descriptorUses(herald.config, names), await readOpenFileLimit());
  // Only a known limit exceeded: a platform without /proc/self/limits is for `herald doctor` to mention.
  if (verdict?.severity !== 'warning') return;
  context.output.err(`warning: ${verdict.symptom}`);
  context.output.err(`    fix: ${verdict.fix}`);
}
