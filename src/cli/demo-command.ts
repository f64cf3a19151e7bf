import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatSummary } from '../delivery/summary.ts';
import { formatTrackingStats } from '../tracking/stats.ts';
import { trackingBaseUrl } from '../tracking/keys.ts';
import { createTrackingService } from '../tracking/service.ts';
import { sentLogs } from '../tracking/tracking-store.ts';
import { simulatorConfigLines } from '../sim/config-lines.ts';
import type { Herald } from '../main.ts';
import { runDoctor } from '../doctor/run-doctor.ts';
import { startApiServer, type ApiServer } from '../api/server.ts';
import { createToken } from '../api/tokens.ts';
import { createSignInCode } from '../web/sessions.ts';
import { runDemo, type DemoProgress } from '../demo/run-demo.ts';
import { stderrStatusLine } from '../common/status-line.ts';
import { untilSignal } from './sim-command.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

export function registerDemoCommands(program: Command, context: CliContext): void {
  program
    .command('demo')
    .description('import, prepare and send a personalized delivery to the built-in ISP simulator')
    .option('-n, --recipients <count>', 'number of recipients', '10000')
    .option('--validity-seconds <seconds>', 'how long soft failures are retried', '15')
    .option('--json', 'print the summary as one JSON object on the last stdout line')
    .option(
      '--mid',
      'mid-sourcing: push the delivery to an execution instance (its own database) that sends it, and pull its logs back',
    )
    .option('--keep-running', 'keep the MTA and the simulator running after the delivery, until Ctrl-C')
    .action(async (options, command: Command) => {
      const recipients = positiveInteger(options.recipients, '--recipients');
      const validitySeconds = positiveInteger(options.validitySeconds, '--validity-seconds');
      await withHerald(
        context,
        command,
        async (herald) => {
          const dataDir = herald.store.dialect === 'sqlite' ? dirname(herald.store.location) : resolve('data');
          mkdirSync(dataDir, { recursive: true });
          const progress = progressPrinter(context);
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
            // The summary is the result: on stdout, unless --json keeps stdout for the JSON object.
            const say = options.json ? context.output.err : context.output.out;
            for (const entry of run.result.shaping.bound)
              say(`throttled by MX rule "${entry.rule}": ${entry.limit} (${entry.reason})`);
            for (const line of formatTrackingStats(run.result.tracking)) say(line);
            for (const line of formatSummary(run.result)) say(line);
            say(
              `  ${run.result.msgsPerSec} msgs/s while the bulk went out (first 95 % of accepted messages); ${(run.result.elapsedMs / 1000).toFixed(1)} s in all, retries included; database ${herald.store.location}`,
            );
            // What the doctor makes of the run: the demo's refusing, stalling and rate-limiting hosts show up.
            const diagnosis = await runDoctor(herald, { skipConfiguration: true });
            say(
              `  doctor: ${diagnosis.findings.length === 0 ? 'all checks passed' : `${diagnosis.findings.length} findings (\`herald doctor\` explains each)`}`,
            );
            for (const finding of diagnosis.findings)
              say(`    ${finding.severity} ${finding.subject}: ${finding.symptom}`);
            if (options.json)
              printJson(context, {
                ...demoJson(run.result),
                doctor: diagnosis.findings.map(({ check, severity, subject, symptom }) => ({
                  check,
                  severity,
                  subject,
                  symptom,
                })),
              });
            if (options.keepRunning) await keepRunning(context, herald, run);
          } finally {
            await run.close();
          }
        },
        { create: true },
      );
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

function progressPrinter(context: CliContext) {
  let lastPrinted = 0;
  const line = stderrStatusLine();
  const format = (p: DemoProgress) =>
    `sent ${p.sent}  failed ${p.failed}  pending ${p.pending}  ${p.msgsPerSec} msgs/s  ${(p.elapsedMs / 1000).toFixed(1)} s`;
  return {
    update(p: DemoProgress) {
      // On a terminal one live line (log records are written above it); otherwise a line every 2 s.
      if (line.live) line.set(format(p));
      else if (p.elapsedMs - lastPrinted >= 2_000) {
        lastPrinted = p.elapsedMs;
        context.output.err(format(p));
      }
    },
    done() {
      line.done();
    },
  };
}

/**
 * `--keep-running`: the simulator's herald.yaml lines, a live tracking server with example URLs, and
 * the dashboard (the api role) with a one-time sign-in code, until Ctrl-C.
 */
async function keepRunning(
  context: CliContext,
  herald: Herald,
  run: Awaited<ReturnType<typeof runDemo>>,
): Promise<void> {
  for (const line of simulatorConfigLines(run.simulator)) context.output.out(line);
  const tracking = await createTrackingService(herald);
  let dashboard: ApiServer | undefined;
  try {
    dashboard = await startDashboard(herald);
    // An operator token for the browser, never shown: a one-time code signs in as it, once, within the hour.
    const now = herald.clock.now();
    const { view } = await createToken(herald.store, { role: 'operator', name: 'demo dashboard' }, now);
    const { code } = await createSignInCode(herald.store, view.tokenId, { now, lifetimeMs: 3_600_000 });
    context.output.out(`# dashboard: ${dashboard.url}/ui/deliveries/${run.result.deliveryId}`);
    context.output.out(`#   sign in with this one-time code (works once, within the hour): ${code}`);
    const address = await tracking.listen();
    const [log] = await sentLogs(herald.store, run.result.deliveryId, 1);
    context.output.out(
      `# tracking server listening on ${address} (links in messages use ${trackingBaseUrl(herald.config.tracking)})`,
    );
    if (log) {
      const claims = {
        deliveryId: run.result.deliveryId,
        logId: log.id,
        issuedAt: Math.floor(herald.clock.now() / 1000),
      };
      const base = trackingBaseUrl(herald.config.tracking);
      context.output.out(
        `#   mirror page of delivery log ${log.id}: ${base}/m/${tracking.keyRing.sign({ kind: 'mirror', ...claims })}`,
      );
      context.output.out(`#   open pixel: ${base}/o/${tracking.keyRing.sign({ kind: 'open', ...claims })}`);
      context.output.out(
        `#   unsubscribe page: ${base}/u/${tracking.keyRing.sign({ kind: 'unsubscribe', ...claims })}`,
      );
    }
    const stopped = untilSignal(); // listening before the line that invites the signal
    context.output.err('keep running: MTA, simulator and tracking server stay up; press Ctrl-C to stop');
    await stopped;
  } finally {
    await dashboard?.close();
    await tracking.close();
  }
}

/** The api role's server with the dashboard: on api.port, or any free port when that one is taken. */
async function startDashboard(herald: Herald): Promise<ApiServer> {
  try {
    return await startApiServer(herald);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE') throw error;
    return startApiServer(herald, 0);
  }
}
