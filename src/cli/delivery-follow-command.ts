import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { finalDeliveryStates } from '../delivery/state-machine.ts';
import { summarizeDelivery, type DeliverySummary } from '../delivery/summary.ts';
import { runDoctor } from '../doctor/run-doctor.ts';
import type { Herald } from '../main.ts';
import { readShapingSnapshots } from '../shaping/stats-store.ts';
import { mergeSnapshots } from '../shaping/stats-view.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// Following one delivery: `delivery watch N`, live until it ends (`delivery logs N` lists its logs).

export function registerDeliveryFollowCommands(delivery: Command, context: CliContext): void {
  delivery
    .command('watch <id>')
    .description(
      'follow a delivery live: counts, rate, ETA, the binding MX rule, failures by reason, doctor findings; exits when it ends',
    )
    .option('--interval <seconds>', 'how often to refresh', '2')
    .option('--json', 'NDJSON: one object per refresh {"summary","rate","etaSeconds","binding","findings"}')
    .action(async (id: string, options: { interval: string; json?: boolean }, command: Command) => {
      const deliveryId = positiveInteger(id, 'delivery id');
      const intervalMs = Number(options.interval) * 1000;
      if (!Number.isFinite(intervalMs) || intervalMs <= 0)
        throw new AppError(
          'INPUT_INVALID',
          `--interval must be a positive number of seconds (got "${options.interval}")`,
        );
      await withHerald(context, command, async (herald) => {
        let previous: { done: number; at: number } | undefined;
        for (;;) {
          const tick = await watchTick(herald, deliveryId, previous);
          previous = { done: tick.summary.sent + tick.summary.failed + tick.summary.ignored, at: herald.clock.now() };
          if (options.json) printJson(context, tick);
          else for (const line of formatTick(tick)) context.output.out(line);
          if (finalDeliveryStates.includes(tick.summary.state)) return;
          await new Promise((resolve) => setTimeout(resolve, intervalMs));
        }
      });
    });
}

interface WatchTick {
  summary: DeliverySummary;
  /** Messages done (sent, failed, ignored) per second since the previous refresh; null on the first. */
  rate: number | null;
  etaSeconds: number | null;
  binding: Array<{ rule: string; limit: string; reason: string }>;
  findings: Array<{ severity: string; symptom: string; fix: string }>;
}

async function watchTick(
  herald: Herald,
  deliveryId: number,
  previous: { done: number; at: number } | undefined,
): Promise<WatchTick> {
  const now = herald.clock.now();
  const summary = await summarizeDelivery(herald.store, deliveryId);
  const done = summary.sent + summary.failed + summary.ignored;
  const rate =
    previous && now > previous.at ? Math.round(((done - previous.done) * 1000 * 10) / (now - previous.at)) / 10 : null;
  const view = mergeSnapshots(await readShapingSnapshots(herald.store, now - 300_000), now);
  const diagnosis = await runDoctor(herald, { deliveryId, skipConfiguration: true });
  return {
    summary,
    rate,
    etaSeconds: rate && rate > 0 ? Math.round(summary.pending / rate) : null,
    binding: view.rules
      .filter((rule) => rule.binding !== 'none')
      .map((rule) => ({ rule: rule.rule, limit: rule.binding, reason: rule.bindingReason })),
    findings: diagnosis.findings.map(({ severity, symptom, fix }) => ({ severity, symptom, fix })),
  };
}

function formatTick(tick: WatchTick): string[] {
  const s = tick.summary;
  const reasons = Object.entries(s.byReason)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  return [
    `${new Date().toISOString().slice(11, 19)} delivery ${s.deliveryId} ${s.state}: sent ${s.sent}, failed ${s.failed}, pending ${s.pending}${tick.rate === null ? '' : `, ${tick.rate} msg/s`}${tick.etaSeconds === null ? '' : `, ETA ${Math.round(tick.etaSeconds / 60)} min`}`,
    ...(reasons ? [`  failures: ${reasons}`] : []),
    ...tick.binding.slice(0, 3).map((b) => `  binding: rule ${b.rule}: ${b.reason}`),
    ...tick.findings.map((f) => `  doctor ${f.severity}: ${f.symptom} (fix: ${f.fix})`),
  ];
}
