import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatSummary } from '../delivery/summary.ts';
import { runDoctor } from '../doctor/run-doctor.ts';
import { runDemo, type DemoProgress } from '../demo/run-demo.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

export function registerDemoCommands(program: Command, context: CliContext): void {
  program
    .command('demo')
    .description('import, prepare and send a personalized delivery to the built-in ISP simulator')
    .option('-n, --recipients <count>', 'number of recipients', '10000')
    .option('--validity-seconds <seconds>', 'how long soft failures are retried', '15')
    .option('--json', 'print the summary as one JSON object on the last stdout line')
    .option('--mid', 'mid-sourcing: push the delivery to an execution instance (its own database) that sends it, and pull its logs back')
    .option('--keep-running', 'keep the MTA and the simulator running after the delivery, until Ctrl-C')
    .action(async (options, command: Command) => {
      const recipients = positiveInteger(options.recipients, '--recipients');
      const validitySeconds = positiveInteger(options.validitySeconds, '--validity-seconds');
      await withHerald(context, command, async (herald) => {
        const dataDir = herald.store.dialect === 'sqlite' ? dirname(herald.store.location) : resolve('data');
        mkdirSync(dataDir, { recursive: true });
        const progress = progressPrinter(context, Boolean(process.stderr.isTTY));
        const run = await runDemo(herald, {
          recipients,
          dataDir,
          validitySeconds,
          mid: Boolean(options.mid),
          onStep: (message) => context.output.err(message),
          onProgress: progress.update,
        });
        progress.done();
        try {
          for (const line of formatSummary(run.result)) context.output.err(line);
          context.output.err(`  ${run.result.msgsPerSec} msgs/s while the bulk went out (first 95 % of accepted messages); ${(run.result.elapsedMs / 1000).toFixed(1)} s in all, retries included; database ${herald.store.location}`);
          // What the doctor makes of the run: the demo's refusing, stalling and rate-limiting hosts show up.
          const diagnosis = await runDoctor(herald);
          context.output.err(`  doctor: ${diagnosis.findings.length === 0 ? 'all checks passed' : `${diagnosis.findings.length} findings (\`herald doctor\` explains each)`}`);
          for (const finding of diagnosis.findings) context.output.err(`    ${finding.severity} ${finding.subject}: ${finding.symptom}`);
          if (options.json) printJson(context, { ...demoJson(run.result), doctor: diagnosis.findings.map(({ check, severity, subject, symptom }) => ({ check, severity, subject, symptom })) });
          if (options.keepRunning) {
            context.output.err('keep running: MTA and simulator stay up; press Ctrl-C to stop');
            await untilSignal();
          }
        } finally {
          await run.close();
        }
      });
    });
}

/** The `herald demo --json` contract (DESIGN.md): add fields, never rename. */
function demoJson(result: Awaited<ReturnType<typeof runDemo>>['result']) {
  return {
    deliveryId: result.deliveryId,
    state: result.state,
    total: result.total,
    sent: result.sent,
    failed: result.failed,
    ignored: result.ignored,
    pending: result.pending,
    excluded: result.excluded,
    retried: result.retried,
    byReason: result.byReason,
    elapsedMs: result.elapsedMs,
    msgsPerSec: result.msgsPerSec,
    cancelled: result.cancelled,
    exclusions: result.exclusions,
    tracking: result.tracking,
    // MX rules that bound during the run: [{ rule, limit, reason, seen }].
    shaping: result.shaping,
  };
}

function progressPrinter(context: CliContext, tty: boolean) {
  let lastPrinted = 0;
  const format = (p: DemoProgress) =>
    `sent ${p.sent}  failed ${p.failed}  pending ${p.pending}  ${p.msgsPerSec} msgs/s  ${(p.elapsedMs / 1000).toFixed(1)} s`;
  return {
    update(p: DemoProgress) {
      if (tty) process.stderr.write(`\r${format(p)}\u001b[K`);
      else if (p.elapsedMs - lastPrinted >= 2_000) {
        lastPrinted = p.elapsedMs;
        context.output.err(format(p));
      }
    },
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

