import type { Command } from 'commander';
import { simulatorConfigLines, simulatorMtaSettings } from '../sim/config-lines.ts';
import { startSimulator } from '../sim/simulator.ts';
import { printJson, type CliContext } from './context.ts';

// `herald sim start`: the ISP simulator of the demo as a process of its own, to try the "Using it"
// flow (import, create, prepare, start) against it instead of the Internet.

export function registerSimCommands(program: Command, context: CliContext): void {
  const sim = program.command('sim').description('the ISP simulator: scripted SMTP hosts and DNS on 127.0.0.1');
  sim
    .command('start')
    .description('run the simulator until Ctrl-C and print the herald.yaml lines that send to it')
    .option('--rate-limit-per-minute <n>', 'limit of the rate-limiting host (ratelimit.test)', Number, 600)
    .option('--json', 'print {"dnsServer","routes":[{"match","host","port"}],"domains":[...]} as one line')
    .action(async (options: { rateLimitPerMinute: number; json?: boolean }) => {
      const simulator = await startSimulator({ rateLimitPerMinute: options.rateLimitPerMinute });
      // Listen for the signal before saying "running": a caller that stops the simulator as soon
      // as it reads that line must never meet the default action (killed, no exit code).
      const stopped = untilSignal();
      try {
        if (options.json)
          printJson(context, {
            dnsServer: simulator.dnsServer,
            ...simulatorMtaSettings(simulator),
            domains: simulator.domains,
          });
        else for (const line of simulatorConfigLines(simulator)) context.output.out(line);
        context.output.err('simulator running; Ctrl-C to stop');
        await stopped;
        const totals = simulator.stats().totals;
        context.output.err(
          `simulator stopped: ${totals.messagesAccepted} messages accepted, ${totals.recipientsRefused} recipients refused, on ${totals.connections} connections`,
        );
      } finally {
        await simulator.close();
      }
    });
}

export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const done = (signal: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(signal);
    };
    const onInt = () => done('SIGINT');
    const onTerm = () => done('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}
