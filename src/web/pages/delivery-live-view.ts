import type { Finding } from '../../doctor/finding.ts';
import type { DeliveryTick, EtaOrError } from '../live-ticks.ts';
import { evidenceHref } from './platform-pages.ts';

// What the live part of the delivery page shows, from one tick and the latest ETA (undefined while
// the first one is computed): counts and progress, the rate, the throughput series for uPlot, the
// ETA and what binds it, failures grouped with links to the matching logs; and the doctor's findings.

function logsLink(deliveryId: number, filter: Record<string, string | null | undefined>): string {
  const query = new URLSearchParams({ status: 'failed' });
  for (const [key, value] of Object.entries(filter)) if (value) query.set(key, value);
  return `/ui/deliveries/${deliveryId}/logs?${query.toString()}`;
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return 'never at these rates';
  const minutes = Math.max(0, Math.round(ms / 60_000));
  if (minutes < 1) return 'under a minute';
  if (minutes < 120) return `${minutes} min`;
  return `${Math.round(minutes / 6) / 10} h`;
}

const minuteMs = 60_000;
/** The chart's most points: a chart 1,440 px wide at most, and each 2 s update of the page carries them. */
const maxPoints = 1_440;

/**
 * uPlot's columns: minutes (seconds since the epoch), then sent, deferred and failed per minute,
 * every minute from the one before the start to now (or the end) present, quiet ones at zero. A
 * delivery longer than maxPoints minutes is drawn in steps of several minutes, each point the
 * messages per minute over its step: a week of sending was 10,080 points (212 KB in every update).
 */
export function throughputSeries(tick: DeliveryTick): number[][] {
  const floor = (at: number) => Math.floor(at / minuteMs) * minuteMs;
  const known = tick.throughput.map((m) => m.minute);
  // The minute before the start (nothing sent yet) is drawn too: a line needs two points.
  const first = Math.min(...known, ...(tick.startedAt === null ? [] : [floor(tick.startedAt) - minuteMs]));
  const last = Math.max(...known, ...(tick.startedAt === null ? [] : [floor(tick.finishedAt ?? tick.at)]));
  if (!Number.isFinite(first) || !Number.isFinite(last)) return [[], [], [], []];
  const spanMinutes = (last - first) / minuteMs + 1;
  const stepMinutes = Math.ceil(spanMinutes / maxPoints);
  const stepMs = stepMinutes * minuteMs;
  const sums = Array.from({ length: Math.ceil(spanMinutes / stepMinutes) }, () => ({
    sent: 0,
    deferred: 0,
    failed: 0,
  }));
  for (const m of tick.throughput) {
    const sum = sums[Math.floor((m.minute - first) / stepMs)]!;
    sum.sent += m.sent;
    sum.deferred += m.deferred;
    sum.failed += m.failed;
  }
  const column = (pick: (m: { sent: number; deferred: number; failed: number }) => number) =>
    sums.map((sum) => pick(sum) / stepMinutes);
  return [
    sums.map((_, i) => (first + i * stepMs) / 1000),
    column((m) => m.sent),
    column((m) => m.deferred),
    column((m) => m.failed),
  ];
}

export function deliveryLiveView(tick: DeliveryTick, latestEta: { value: EtaOrError; at: number } | undefined) {
  const s = tick.summary;
  const id = s.deliveryId;
  const done = s.sent + s.failed + s.ignored + s.cancelled;
  const percent = (n: number) => (s.total > 0 ? Math.round((n * 1000) / s.total) / 10 : 0);
  const estimate = latestEta?.value;
  const eta = estimate === undefined || 'error' in estimate ? null : estimate;
  return {
    state: s.state,
    total: s.total,
    sent: s.sent,
    failed: s.failed,
    ignored: s.ignored,
    pending: s.pending,
    cancelled: s.cancelled,
    excluded: s.excluded,
    retried: s.retried,
    donePercent: percent(done),
    sentPercent: percent(s.sent),
    failedPercent: percent(s.failed),
    rate: tick.rate,
    startedAt: tick.startedAt,
    updatedAt: tick.at,
    lastError: s.lastError,
    // Links recipient data made into javascript: and the like: sent without their href (docs/tracking.md).
    warnings: (s.preparationWarnings ?? []).map((w) => `${w.code}: ${w.message}`),
    retrying: Object.entries(s.retryingByReason)
      .sort((a, b) => b[1] - a[1])
      .map(([reason, count]) => ({
        reason,
        count,
        href: `/ui/deliveries/${id}/logs?status=pending&reason=${encodeURIComponent(reason)}`,
      })),
    series: throughputSeries(tick),
    eta: eta && {
      pending: eta.pending,
      finishAt: eta.finishAt,
      inText: eta.finishAt === null ? null : duration(eta.finishAt - eta.computedAt),
      boundBy: eta.boundBy && {
        rule: eta.boundBy.rule,
        rateKey: eta.boundBy.rateKey,
        messagesPerHour: Math.round(eta.boundBy.messagesPerHour),
        backoffFactor: eta.boundBy.backoffFactor,
      },
      validUntil: eta.validUntil,
      expiring: eta.expiring,
    },
    etaError: estimate !== undefined && 'error' in estimate ? estimate.error : null,
    // A finished delivery with nothing pending has nothing to estimate: no "Estimating…" on its page.
    finished: tick.finishedAt !== null && s.pending === 0,
    finishedAt: tick.finishedAt,
    estimating: estimate === undefined,
    etaAt: latestEta?.at ?? null,
    failuresByReason: tick.failures.byReason.map((g) => ({
      type: g.key.type ?? '—',
      reason: g.key.reason ?? '—',
      category: g.key.category ?? '—',
      count: g.count,
      href: logsLink(id, { reason: g.key.reason, category: g.key.category }),
    })),
    failuresByDomain: tick.failures.byDomain.map((g) => ({
      domain: g.key.domain,
      count: g.count,
      href: logsLink(id, { domain: g.key.domain }),
    })),
    failuresByMxHost: tick.failures.byMxHost.map((g) => ({
      mxHost: g.key.mxHost ?? '(none reached)',
      count: g.count,
      href: logsLink(id, { mxHost: g.key.mxHost }),
    })),
  };
}

/** The doctor's findings for the page; `examining` while the first examination runs. */
export function findingsView(latest: { value: Finding[] } | undefined) {
  return {
    examining: latest === undefined,
    findings: (latest?.value ?? []).map((f) => ({
      severity: f.severity,
      subject: f.subject,
      symptom: f.symptom,
      cause: f.cause,
      fix: f.fix,
      href: f.logs ? evidenceHref(f) : null,
    })),
  };
}
