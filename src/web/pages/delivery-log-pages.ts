import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'csv-stringify';
import { pageDeliveryLogs, type DeliveryLogFilter } from '../../delivery/delivery-log-store.ts';
import { getDelivery } from '../../delivery/delivery-store.ts';
import { AppError } from '../../common/errors.ts';
import type { DeliveryLogRow, DeliveryLogStatus } from '../../store/tables.ts';
import type { WebRoutes } from '../dashboard.ts';
import type { WebContext } from '../web-route.ts';
import { deliveryIdOf } from './delivery-pages.ts';

// A delivery's per-recipient logs: filters, keyset pagination (`after` = the last id of the previous
// page), and a CSV export streamed page by page, never held whole in memory.

const statuses: readonly DeliveryLogStatus[] = ['pending', 'sending', 'sent', 'failed', 'ignored', 'cancelled'];
const pageSize = 100;
const exportPageSize = 1_000;

const filterFields = {
  status: 'status',
  domain: 'domain',
  reason: 'failureReason',
  category: 'failureCategory',
  type: 'failureType',
  mxHost: 'mxHost',
  email: 'email',
} as const;

function filterOf(context: WebContext): { filter: DeliveryLogFilter; values: Record<string, string>; after: number } {
  const query = context.request.query as Record<string, unknown>;
  const filter: DeliveryLogFilter = {};
  const values: Record<string, string> = {};
  for (const [field, key] of Object.entries(filterFields)) {
    const value = query[field];
    if (value === undefined || value === '') continue;
    if (typeof value !== 'string' || value.length > 320)
      throw new AppError('INPUT_INVALID', `${field}: one value of at most 320 characters`);
    if (field === 'status' && !(statuses as readonly string[]).includes(value))
      throw new AppError('INPUT_INVALID', `status: "${value}" is not a log status (${statuses.join(', ')})`);
    (filter as Record<string, string>)[key] = value;
    values[field] = value;
  }
  const afterText = query.after;
  const after = afterText === undefined || afterText === '' ? 0 : Number(afterText);
  if (!Number.isSafeInteger(after) || after < 0)
    throw new AppError('INPUT_INVALID', 'after: the id of the last log of the previous page (a whole number)');
  return { filter, values, after };
}

function rowView(row: DeliveryLogRow) {
  return {
    id: Number(row.id),
    email: row.email,
    domain: row.domain,
    status: row.status,
    attempts: Number(row.attempts),
    reply:
      row.last_reply_code === null
        ? ''
        : `${row.last_reply_code} ${row.last_enhanced_status ?? ''} ${row.last_reply_text ?? ''}`.trim(),
    type: row.failure_type ?? '',
    reason: row.failure_reason ?? '',
    category: row.failure_category ?? '',
    mxHost: row.mx_host ?? '',
    sentAt: row.sent_at === null ? null : Number(row.sent_at),
    updatedAt: Number(row.updated_at),
  };
}

export function registerDeliveryLogPages(routes: WebRoutes): void {
  routes.get('/deliveries/:id/logs', 'viewer', async (context) => {
    const id = deliveryIdOf(context);
    const { filter, values, after } = filterOf(context);
    const delivery = await getDelivery(context.herald.store, id);
    const rows = await pageDeliveryLogs(context.herald.store, id, filter, { afterId: after, limit: pageSize });
    const base = new URLSearchParams(values);
    const next = rows.length === pageSize ? Number(rows[rows.length - 1]!.id) : null;
    const nextQuery = new URLSearchParams(values);
    if (next !== null) nextQuery.set('after', String(next));
    return context.render('logs', {
      title: `Logs of delivery ${id}`,
      nav: 'deliveries',
      delivery: { id, name: delivery.name },
      logs: rows.map(rowView),
      filter: values,
      statuses,
      nextHref: next === null ? null : `/ui/deliveries/${id}/logs?${nextQuery.toString()}`,
      firstHref: after > 0 ? `/ui/deliveries/${id}/logs?${base.toString()}` : null,
      csvHref: `/ui/deliveries/${id}/logs.csv?${base.toString()}`,
    });
  });

  routes.get('/deliveries/:id/logs.csv', 'viewer', async (context) => {
    const id = deliveryIdOf(context);
    const { filter } = filterOf(context);
    await getDelivery(context.herald.store, id);
    const csv = stringify({
      header: true,
      // A cell starting with = + - @ is a formula to a spreadsheet: a quote keeps an SMTP reply or
      // an address that starts so as text (CSV injection).
      cast: { string: (value) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value) },
      columns: [
        'id',
        'email',
        'domain',
        'status',
        'attempts',
        'reply',
        'type',
        'reason',
        'category',
        'mxHost',
        'sentAt',
        'updatedAt',
      ],
    });
    const store = context.herald.store;
    // Pages are read only as fast as the client takes them (the pipeline's backpressure), and no
    // further once it goes: a client closing the download destroys the CSV stream, and the pipeline
    // then returns the generator. A hand-written writer waited there for a 'drain' that never came,
    // holding its page of rows for ever, once per abandoned download.
    async function* lines() {
      let after = 0;
      for (;;) {
        const rows = await pageDeliveryLogs(store, id, filter, { afterId: after, limit: exportPageSize });
        for (const row of rows) {
          const view = rowView(row);
          yield {
            ...view,
            sentAt: view.sentAt === null ? '' : new Date(view.sentAt).toISOString(),
            updatedAt: new Date(view.updatedAt).toISOString(),
          };
        }
        if (rows.length < exportPageSize) return;
        after = Number(rows[rows.length - 1]!.id);
      }
    }
    // A failed read or a client gone cuts the response short (its headers are sent): nothing to add.
    context.track(pipeline(Readable.from(lines()), csv).catch(() => {}));
    return context.reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="delivery-${id}-logs.csv"`)
      .send(csv);
  });
}
