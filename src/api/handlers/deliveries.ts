import { etaStates, etaView } from '../../delivery/delivery-eta.ts';
import type { Static } from '@sinclair/typebox';
import { definitionFromJson } from '../../delivery/definition.ts';
import { pageDeliveryLogs } from '../../delivery/delivery-log-store.ts';
import { createDelivery, getDelivery, listDeliveries, setDeliveryShare } from '../../delivery/delivery-store.ts';
import { deliveryView } from '../../delivery/delivery-view.ts';
import { startDelivery } from '../../delivery/lifecycle.ts';
import { actOnDelivery, prepareConfigured, type OperatorAction } from '../../delivery/operator-actions.ts';
import { previewDelivery } from '../../delivery/preview.ts';
import { summarizeDelivery } from '../../delivery/summary.ts';
import { deliveryTrackingStats } from '../../tracking/stats.ts';
import type { DeliveryLogRow } from '../../store/tables.ts';
import { consolidateDelivery } from '../../tracking/consolidation-run.ts';
import { createOnce, idempotencyKeyHeader } from '../idempotency.ts';
import { keysetPage, rowsToRead } from '../keyset-page.ts';
import type { ApiContext, HandlerInput } from '../route.ts';
import type { Store } from '../../store/database.ts';
import type * as S from '../schemas.ts';

// Deliveries through the API: the same domain functions as `herald delivery …`.

type Id = Static<typeof S.idParams>;

export async function list(
  { herald }: ApiContext,
  { query }: HandlerInput<unknown, Static<typeof S.deliveryListQuery>, unknown>,
) {
  const limit = Math.min(query.limit ?? 100, herald.config.api.maxPageSize);
  const page = keysetPage(await listDeliveries(herald.store, rowsToRead(limit), query.before), limit);
  return { deliveries: page.rows.map(deliveryView), next: page.next };
}

export async function create(
  { herald, caller }: ApiContext,
  { body, request, reply }: HandlerInput<unknown, unknown, Static<typeof S.deliveryDefinition>>,
) {
  const definition = definitionFromJson(body);
  const now = herald.clock.now();
  const insert = (store: Store) =>
    createDelivery(store, definition, { validityHours: herald.config.delivery.validityHours }, now);
  const key = request.headers[idempotencyKeyHeader];
  if (typeof key !== 'string' || !caller) return deliveryView(await insert(herald.store));
  const created = await createOnce(
    { store: herald.store, tokenId: caller.tokenId, key, route: 'createDelivery', body, now },
    async (store) => (await insert(store)).id,
  );
  if (created.replayed) reply.header('idempotent-replayed', 'true');
  return deliveryView(await getDelivery(herald.store, created.id));
}

/** The checks of creation (fields, addresses, Liquid syntax), nothing written. */
export async function validate(
  _context: ApiContext,
  { body }: HandlerInput<unknown, unknown, Static<typeof S.deliveryDefinition>>,
) {
  const definition = definitionFromJson(body);
  return {
    valid: true as const,
    name: definition.name,
    fromAddress: definition.fromAddress,
    listName: definition.listName,
  };
}

export async function show({ herald, shownEtas }: ApiContext, { params }: HandlerInput<Id, unknown, unknown>) {
  const row = await getDelivery(herald.store, params.id);
  // The ETA scans the pending logs: one scan shared by every caller (its computedAt says when).
  const eta = etaStates.has(row.state) ? await shownEtas.get(params.id) : undefined;
  return {
    delivery: deliveryView(row),
    summary: await summarizeDelivery(herald.store, params.id),
    eta: eta === undefined ? null : etaView(eta),
  };
}

export async function prepare({ herald, shownEtas }: ApiContext, { params }: HandlerInput<Id, unknown, unknown>) {
  const result = await prepareConfigured(herald, params.id);
  // An action changes the estimate: the next GET of the delivery estimates afresh.
  shownEtas.invalidate(params.id);
  return result;
}

export async function start(
  { herald, shownEtas }: ApiContext,
  { params, body }: HandlerInput<Id, unknown, Static<typeof S.startBody> | undefined>,
) {
  const at = body?.at === undefined ? undefined : Date.parse(body.at);
  const row = await startDelivery(herald.store, params.id, herald.clock.now(), at);
  shownEtas.invalidate(params.id);
  return deliveryView(row);
}

export function act(action: OperatorAction) {
  return async ({ herald, shownEtas }: ApiContext, { params }: HandlerInput<Id, unknown, unknown>) => {
    const { row, forwarding } = await actOnDelivery(herald, params.id, action);
    shownEtas.invalidate(params.id);
    return { delivery: deliveryView(row), forwarding: forwarding.kind === 'not-pushed' ? null : forwarding };
  };
}

export async function share(
  { herald, shownEtas }: ApiContext,
  { params, body }: HandlerInput<Id, unknown, Static<typeof S.shareBody>>,
) {
  const row = await setDeliveryShare(herald.store, params.id, body ?? {}, herald.clock.now());
  shownEtas.invalidate(params.id);
  return deliveryView(row);
}

export async function logs(
  { herald }: ApiContext,
  { params, query }: HandlerInput<Id, Static<typeof S.deliveryLogsQuery>, unknown>,
) {
  await getDelivery(herald.store, params.id);
  const limit = Math.min(query.limit ?? 100, herald.config.api.maxPageSize);
  const rows = await pageDeliveryLogs(
    herald.store,
    params.id,
    { status: query.status, domain: query.domain, failureReason: query.failureReason, email: query.email },
    { afterId: query.after ?? 0, limit: rowsToRead(limit) },
  );
  const page = keysetPage(rows, limit);
  return { items: page.rows.map(logView), next: page.next };
}

export async function doctor({ herald, doctorRuns }: ApiContext, { params }: HandlerInput<Id, unknown, unknown>) {
  await getDelivery(herald.store, params.id);
  const diagnosis = await doctorRuns.get(params.id);
  return { checkedAt: diagnosis.checkedAt, checks: diagnosis.checks, findings: diagnosis.findings };
}

function logView(row: DeliveryLogRow) {
  const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  return {
    id: row.id,
    email: row.email,
    domain: row.domain,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.status === 'pending' ? iso(row.next_attempt_at) : null,
    lastReplyCode: row.last_reply_code,
    lastEnhancedStatus: row.last_enhanced_status,
    lastReplyText: row.last_reply_text,
    failureType: row.failure_type,
    failureReason: row.failure_reason,
    failureCategory: row.failure_category,
    mxHost: row.mx_host,
    sentAt: iso(row.sent_at),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

export async function preview(
  { herald }: ApiContext,
  { params, query }: HandlerInput<Id, Static<typeof S.previewQuery>, unknown>,
) {
  return previewDelivery(herald.store, params.id, query.email);
}

export async function indicators({ herald }: ApiContext, { params }: HandlerInput<Id, unknown, unknown>) {
  await getDelivery(herald.store, params.id);
  return deliveryTrackingStats(herald.store, params.id);
}

/** The CLI's `delivery stats ID --refresh`: one delivery consolidated now, then its indicators. */
export async function refreshIndicators({ herald }: ApiContext, { params }: HandlerInput<Id, unknown, unknown>) {
  await getDelivery(herald.store, params.id);
  await consolidateDelivery(
    herald.store,
    params.id,
    herald.config.tracking.openDedupSeconds * 1_000,
    herald.clock.now(),
  );
  return deliveryTrackingStats(herald.store, params.id);
}
