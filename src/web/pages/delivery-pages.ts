import { getDelivery, setDeliveryShare } from '../../delivery/delivery-store.ts';
import { startDelivery } from '../../delivery/lifecycle.ts';
import { actOnDelivery } from '../../delivery/operator-actions.ts';
import { countLogsByDelivery, searchDeliveries } from '../../delivery/progress-store.ts';
import { canTransition } from '../../delivery/state-machine.ts';
import { flagNames } from '../../tracking/automation.ts';
import { deliveryTrackingStats } from '../../tracking/stats.ts';
import { latestFlaggedEvents } from '../../tracking/tracking-store.ts';
import { AppError } from '../../common/errors.ts';
import type { DeliveryRow, DeliveryState } from '../../store/tables.ts';
import type { WebRoutes } from '../dashboard.ts';
import type { LiveTicks } from '../live-ticks.ts';
import type { TickCache } from '../tick-cache.ts';
import type { WebContext } from '../web-route.ts';
import { deliveryLiveView, findingsView } from './delivery-live-view.ts';
import { registerDeliveryLogPages } from './delivery-log-pages.ts';

// The deliveries list and the delivery page: live progress (polled every 2 s, one shared load per
// tick), throughput, ETA, failures, logs, indicators, doctor findings, and the operator's actions
// behind a confirmation step.

export const deliveryStates: readonly DeliveryState[] = [
  'edited',
  'preparing',
  'prepared',
  'preparation_failed',
  'start_pending',
  'in_progress',
  'paused',
  'stopped',
  'finished',
  'failed',
  'deleted',
];

const actions = {
  start: { to: 'in_progress', label: 'Start', audit: 'startDelivery' },
  pause: { to: 'paused', label: 'Pause', audit: 'pauseDelivery' },
  resume: { to: 'in_progress', label: 'Resume', audit: 'resumeDelivery' },
  stop: { to: 'stopped', label: 'Stop', audit: 'stopDelivery' },
} as const satisfies Record<string, { to: DeliveryState; label: string; audit: string }>;

type ActionName = keyof typeof actions;

/** Deliveries a page of the list, newest first; the next page follows by id. */
const listPageSize = 200;

export function deliveryIdOf(context: WebContext): number {
  const raw = (context.request.params as { id?: string }).id ?? '';
  const id = Number(raw);
  if (!/^\d{1,12}$/.test(raw) || !Number.isSafeInteger(id) || id < 1)
    throw new AppError('NOT_FOUND', `no delivery "${raw.slice(0, 40)}": a delivery id is a positive integer`);
  return id;
}

export function availableActions(state: DeliveryState): Array<{ name: ActionName; label: string }> {
  return (Object.keys(actions) as ActionName[])
    .filter((name) => (name === 'start' ? state === 'prepared' : canTransition(state, actions[name].to)))
    .filter((name) => !(name === 'resume' && state !== 'paused'))
    .map((name) => ({ name, label: actions[name].label }));
}

function queryText(value: unknown, field: string, max = 200): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > max)
    throw new AppError('INPUT_INVALID', `${field}: at most ${max} characters of text`);
  return value;
}

function listRow(
  row: DeliveryRow,
  counts: { pending: number; sent: number; failed: number; total: number } | undefined,
  now: number,
) {
  const total = counts?.total ?? 0;
  const startedAt = row.started_at === null ? null : Number(row.started_at);
  const end = row.finished_at === null ? now : Number(row.finished_at);
  const done = (counts?.sent ?? 0) + (counts?.failed ?? 0);
  const seconds = startedAt === null ? 0 : (end - startedAt) / 1000;
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    total,
    sent: counts?.sent ?? 0,
    failed: counts?.failed ?? 0,
    pending: counts?.pending ?? 0,
    donePercent: total > 0 ? Math.round((done * 1000) / total) / 10 : 0,
    rate: seconds > 0 ? Math.round((done * 10) / seconds) / 10 : null,
    startedAt,
  };
}

export function registerDeliveryPages(routes: WebRoutes, options: { ticks: LiveTicks }): void {
  const { ticks } = options;

  routes.get('/deliveries', 'viewer', async (context) => {
    const query = context.request.query as Record<string, unknown>;
    const state = queryText(query.state, 'state', 40);
    if (state !== undefined && !(deliveryStates as readonly string[]).includes(state))
      throw new AppError('INPUT_INVALID', `state: "${state}" is not a delivery state (${deliveryStates.join(', ')})`);
    const name = queryText(query.q, 'search');
    const beforeText = queryText(query.before, 'before', 12);
    const before = beforeText === undefined ? undefined : Number(beforeText);
    if (before !== undefined && !(/^\d+$/.test(beforeText!) && Number.isSafeInteger(before)))
      throw new AppError('INPUT_INVALID', 'before: the id of the last delivery of the previous page (a whole number)');
    // One more than a page: whether a next page exists, without counting.
    const found = await searchDeliveries(context.herald.store, {
      state: state as DeliveryState | undefined,
      name,
      beforeId: before,
      limit: listPageSize + 1,
    });
    const rows = found.slice(0, listPageSize);
    const counts = await countLogsByDelivery(
      context.herald.store,
      rows.map((r) => r.id),
    );
    const now = context.herald.clock.now();
    const filter = { ...(state && { state }), ...(name && { q: name }) };
    const listHref = (page: Record<string, string>) => {
      const search = new URLSearchParams({ ...filter, ...page }).toString();
      return `/ui/deliveries${search ? `?${search}` : ''}`;
    };
    return context.render('deliveries', {
      title: 'Deliveries',
      nav: 'deliveries',
      deliveries: rows.map((row) => listRow(row, counts.get(row.id), now)),
      states: deliveryStates,
      filter: { state: state ?? '', q: name ?? '' },
      page: {
        size: listPageSize,
        next: found.length > listPageSize ? listHref({ before: String(rows[rows.length - 1]!.id) }) : null,
        first: before === undefined ? null : listHref({}),
      },
    });
  });

  routes.get('/deliveries/:id', 'viewer', async (context) => {
    const id = deliveryIdOf(context);
    const delivery = await getDelivery(context.herald.store, id);
    const [tick, indicators] = await Promise.all([ticks.tick.get(id), indicatorsOf(context, id)]);
    refreshAfterAnswer(context, ticks.eta, id);
    refreshAfterAnswer(context, ticks.findings, id);
    return context.render('delivery', {
      title: `Delivery ${id}`,
      nav: 'deliveries',
      delivery: {
        id,
        name: delivery.name,
        subject: delivery.subject_template,
        from: delivery.from_address,
        priority: delivery.priority,
        weight: delivery.weight,
      },
      // Fair share of shared MX paths (docs/mx-rules.md); a pushed delivery is changed on its execution instance.
      canSetShare:
        context.may('operator') &&
        delivery.execution_peer === null &&
        !['deleted', 'finished', 'stopped'].includes(delivery.state),
      live: deliveryLiveView(tick, ticks.eta.peek(id)),
      doctor: findingsView(ticks.findings.peek(id)),
      actions: context.may('operator') ? availableActions(tick.summary.state) : [],
      indicators,
    });
  });

  routes.get('/deliveries/:id/live', 'viewer', async (context) => {
    const id = deliveryIdOf(context);
    const tick = await ticks.tick.get(id);
    refreshAfterAnswer(context, ticks.eta, id);
    return context.render('_delivery-live', {
      title: '',
      delivery: { id },
      live: deliveryLiveView(tick, ticks.eta.peek(id)),
      actions: context.may('operator') ? availableActions(tick.summary.state) : [],
    });
  });

  routes.get('/deliveries/:id/doctor', 'viewer', async (context) => {
    const id = deliveryIdOf(context);
    // The region's own request waits for the examination (shared with every other viewer).
    const findings = await ticks.findings.get(id);
    return context.render('_delivery-doctor-region', {
      title: '',
      delivery: { id },
      doctor: findingsView({ value: findings }),
    });
  });

  routes.get('/deliveries/:id/confirm/:action', 'operator', async (context) => {
    const id = deliveryIdOf(context);
    const action = actionOf(context);
    const delivery = await getDelivery(context.herald.store, id);
    return context.render('confirm', {
      title: `${actions[action].label} delivery ${id}?`,
      nav: 'deliveries',
      question: `${actions[action].label} delivery ${id} "${delivery.name}"? It is ${delivery.state}.`,
      action: `/ui/deliveries/${id}/${action}`,
      label: actions[action].label,
      cancel: `/ui/deliveries/${id}`,
    });
  });

  for (const name of Object.keys(actions) as ActionName[]) {
    routes.post(`/deliveries/:id/${name}`, { permission: 'operator', audit: actions[name].audit }, async (context) => {
      const id = deliveryIdOf(context);
      const { herald } = context;
      if (name === 'start') await startDelivery(herald.store, id, herald.clock.now());
      else await actOnDelivery(herald, id, name);
      ticks.tick.invalidate(id);
      return context.reply.redirect(`/ui/deliveries/${id}`, 303);
    });
  }

  routes.post('/deliveries/:id/priority', { permission: 'operator', audit: 'setDeliveryPriority' }, async (context) => {
    const id = deliveryIdOf(context);
    const body = context.request.body as Record<string, unknown>;
    const { herald } = context;
    await setDeliveryShare(
      herald.store,
      id,
      { priority: wholeNumber(body, 'priority'), weight: wholeNumber(body, 'weight') },
      herald.clock.now(),
    );
    return context.reply.redirect(`/ui/deliveries/${id}`, 303);
  });

  registerDeliveryLogPages(routes);
}

/** An optional form field holding a whole number (setDeliveryShare checks its range). */
function wholeNumber(body: Record<string, unknown>, field: string): number | undefined {
  const value = body[field];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || !/^\d{1,4}$/.test(value.trim()))
    throw new AppError('INPUT_INVALID', `${field}: expected a whole number`);
  return Number(value.trim());
}

/**
 * Reloads a slow value (ETA, doctor) once this answer is sent, not while it is built: SQLite's driver
 * reads on the event loop, and a page must not wait for a scan it does not show yet.
 */
function refreshAfterAnswer(context: WebContext, cache: TickCache<number, unknown>, id: number): void {
  context.reply.raw.once('close', () => cache.refresh(id));
}

function actionOf(context: WebContext): ActionName {
  const raw = (context.request.params as { action?: string }).action ?? '';
  if (!Object.hasOwn(actions, raw)) throw new AppError('NOT_FOUND', `no delivery action "${raw.slice(0, 40)}"`);
  return raw as ActionName;
}

async function indicatorsOf(context: WebContext, id: number) {
  const [stats, flagged] = await Promise.all([
    deliveryTrackingStats(context.herald.store, id),
    latestFlaggedEvents(context.herald.store, id, 10),
  ]);
  return {
    ...stats,
    botsFlagged: Math.max(0, stats.all.uniqueClickers - stats.human.uniqueClickers),
    flagged: flagged.map((event) => ({ ...event, why: flagNames(event.flags).join(', ') })),
  };
}
