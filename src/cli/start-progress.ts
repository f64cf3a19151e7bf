import { countLogsByDelivery } from '../delivery/progress-store.ts';
import { unfinishedDeliveries } from '../doctor/doctor-store.ts';
import type { Herald } from '../main.ts';
import { readShapingSnapshots } from '../shaping/stats-store.ts';
import { mergeSnapshots, type MxStatsView } from '../shaping/stats-view.ts';

// `herald start`'s progress: every interval, one line per delivery in progress that this platform
// sends (sent, failed, pending, rate since the last line, ETA, and the limit binding right now).

export interface DeliveryProgress {
  id: number;
  name: string;
  sent: number;
  failed: number;
  pending: number;
}

export async function readDeliveryProgress(
  herald: Herald,
): Promise<{ deliveries: DeliveryProgress[]; shaping: MxStatsView }> {
  const now = herald.clock.now();
  const rows = (await unfinishedDeliveries(herald.store)).filter(
    (row) => row.state === 'in_progress' && row.execution_peer === null,
  );
  const counts = await countLogsByDelivery(
    herald.store,
    rows.map((row) => Number(row.id)),
  );
  const deliveries = rows.map((row): DeliveryProgress => {
    const count = counts.get(Number(row.id));
    return {
      id: Number(row.id),
      name: row.name,
      sent: count?.sent ?? 0,
      failed: count?.failed ?? 0,
      pending: count?.pending ?? 0,
    };
  });
  const shaping = mergeSnapshots(await readShapingSnapshots(herald.store, now - 300_000), now);
  return { deliveries, shaping };
}

/** Pure: the lines for this tick, given the previous tick's counts (for the rate). */
export function formatDeliveryProgress(
  current: DeliveryProgress[],
  previous: ReadonlyMap<number, DeliveryProgress>,
  elapsedMs: number,
  shaping: MxStatsView,
): string[] {
  const bound = shaping.rules
    .filter((rule) => rule.binding !== 'none')
    .sort((a, b) => b.waiting - a.waiting || b.messages - a.messages)[0];
  const binding = bound ? `binding: ${bound.bindingReason}` : 'binding: none';
  return current.map((delivery) => {
    const before = previous.get(delivery.id);
    const done = delivery.sent + delivery.failed;
    const rate = before && elapsedMs > 0 ? ((done - before.sent - before.failed) * 1000) / elapsedMs : undefined;
    const eta =
      rate === undefined ? '' : rate > 0 ? `, ETA ${duration((delivery.pending / rate) * 1000)}` : ', no progress';
    return `delivery ${delivery.id} "${delivery.name}": sent ${delivery.sent}, failed ${delivery.failed}, pending ${delivery.pending}${rate === undefined ? '' : `, ${Math.round(rate * 10) / 10} msg/s`}${eta}; ${binding}`;
  });
}

function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 90 ? `${minutes} min` : `${Math.round(minutes / 6) / 10} h`;
}

/** Prints the progress lines every `intervalMs` until stopped; a failed read is logged, never fatal. */
export function startProgressLines(herald: Herald, print: (line: string) => void, intervalMs: number): () => void {
  let previous = new Map<number, DeliveryProgress>();
  let previousAt = herald.clock.now();
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    readDeliveryProgress(herald)
      .then(({ deliveries, shaping }) => {
        const now = herald.clock.now();
        for (const line of formatDeliveryProgress(deliveries, previous, now - previousAt, shaping)) print(line);
        previous = new Map(deliveries.map((d) => [d.id, d]));
        previousAt = now;
      })
      .catch((error: unknown) => herald.logger.warn({ err: error }, 'progress line: cannot read the deliveries'))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
