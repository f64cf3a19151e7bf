import type { DeliveryRow } from '../store/tables.ts';

/** A delivery as `--json` and the API show it (add fields, never rename them). */
export function deliveryView(row: DeliveryRow) {
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    from: row.from_address,
    listId: row.list_id,
    targetCount: row.target_count,
    excludedCount: row.excluded_count,
    validUntil: row.valid_until === null ? null : new Date(row.valid_until).toISOString(),
    scheduledAt: row.scheduled_at === null ? null : new Date(row.scheduled_at).toISOString(),
    lastError: row.last_error,
    priority: row.priority,
    weight: row.weight,
  };
}

export type DeliveryView = ReturnType<typeof deliveryView>;
