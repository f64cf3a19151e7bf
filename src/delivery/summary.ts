import type { Store } from '../store/database.ts';
import { countDeliveryLogs, getDelivery } from './delivery-store.ts';
import type { DeliveryState } from '../store/tables.ts';
import { parsePreparationWarnings, type PreparationWarning } from './preparation-warnings.ts';

/** The figures an operator reads first; also the shape of `herald demo --json` (add fields, never rename). */
export interface DeliverySummary {
  deliveryId: number;
  name: string;
  state: DeliveryState;
  total: number;
  sent: number;
  failed: number;
  ignored: number;
  pending: number;
  cancelled: number;
  excluded: number;
  exclusions: Record<string, number>;
  retried: number;
  /** Failed logs by reason (failed logs only). */
  byReason: Record<string, number>;
  /** Pending logs by the reason of their last soft failure, retried until the validity ends. */
  retryingByReason: Record<string, number>;
  lastError: string | null;
  /** The last preparation's warnings: links recipient data made into something that is not sent as a link. */
  preparationWarnings: PreparationWarning[];
  /** Fair share on MX paths shared with other deliveries (src/mta/fair-share.ts). */
  priority: number;
  weight: number;
}

export async function summarizeDelivery(store: Store, deliveryId: number): Promise<DeliverySummary> {
  const delivery = await getDelivery(store, deliveryId);
  const counts = await countDeliveryLogs(store, deliveryId);
  return {
    deliveryId,
    name: delivery.name,
    state: delivery.state,
    priority: delivery.priority,
    weight: delivery.weight,
    total: counts.total,
    sent: counts.byStatus.sent,
    failed: counts.byStatus.failed,
    ignored: counts.byStatus.ignored,
    // An in-flight claim is still pending from the operator's point of view.
    pending: counts.byStatus.pending + counts.byStatus.sending,
    cancelled: counts.byStatus.cancelled,
    excluded: delivery.excluded_count,
    exclusions: JSON.parse(delivery.exclusions) as Record<string, number>,
    retried: counts.retried,
    byReason: counts.byReason,
    retryingByReason: counts.retryingByReason,
    lastError: delivery.last_error,
    preparationWarnings: parsePreparationWarnings(delivery.preparation_warnings),
  };
}

export function formatSummary(summary: DeliverySummary): string[] {
  const reasons = Object.entries(summary.byReason)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  const exclusions = Object.entries(summary.exclusions)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  return [
    `delivery ${summary.deliveryId} "${summary.name}": ${summary.state} (priority ${summary.priority}, weight ${summary.weight})`,
    `  logs ${summary.total}: sent ${summary.sent}, failed ${summary.failed}, ignored ${summary.ignored}, pending ${summary.pending}, cancelled ${summary.cancelled}; retried ${summary.retried}`,
    `  excluded ${summary.excluded}${exclusions ? ` (${exclusions})` : ''}`,
    ...(reasons ? [`  failures by reason: ${reasons}`] : []),
    ...(Object.keys(summary.retryingByReason ?? {}).length > 0
      ? [
          `  retrying because of: ${Object.entries(summary.retryingByReason)
            .sort((a, b) => b[1] - a[1])
            .map(([reason, n]) => `${reason} ${n}`)
            .join(', ')} (pending logs, by their last soft failure)`,
        ]
      : []),
    ...(summary.preparationWarnings ?? []).map((warning) => `  warning: ${warning.code}: ${warning.message}`),
    ...(summary.lastError ? [`  last error: ${summary.lastError}`] : []),
  ];
}
