import { bounceRatesByDomain, recentBounceEvents } from '../../bounce/bounce-rates-store.ts';
import { ignoreEntry, qualificationEntryView, qualifyEntry } from '../../bounce/qualification-actions.ts';
import { listQualificationEntries } from '../../bounce/qualification-store.ts';
import { BOUNCE_CATEGORIES, isBounceCategory } from '../../bounce/types.ts';
import { AppError } from '../../common/errors.ts';
import { eventView } from '../../quarantine/operator.ts';
import type { QualificationStatus } from '../../store/tables.ts';
import type { WebRoutes } from '../dashboard.ts';
import type { WebContext } from '../web-route.ts';

// Bounces: the qualification table (replies no rule matched, qualified into a site rule or ignored),
// the latest asynchronous bounces and complaints, and bounce and complaint rates by domain per day.

const statuses: readonly QualificationStatus[] = ['to_qualify', 'keep', 'ignore'];
const dayMs = 86_400_000;

function entryIdOf(context: WebContext): number {
  const raw = (context.request.params as { id?: string }).id ?? '';
  if (!/^\d{1,12}$/.test(raw)) throw new AppError('NOT_FOUND', `no qualification entry "${raw.slice(0, 40)}"`);
  return Number(raw);
}

function field(body: Record<string, unknown>, name: string, max: number): string | undefined {
  const value = body[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > max || !/^[\w.-]+$/.test(value))
    throw new AppError('INPUT_INVALID', `${name}: letters, digits, dots, dashes and underscores, at most ${max}`);
  return value;
}

const percent = (n: number, of: number) => (of > 0 ? Math.round((n * 10_000) / of) / 100 : 0);

export function registerBouncePages(routes: WebRoutes): void {
  routes.get('/bounces', 'viewer', async (context) => {
    const query = context.request.query as Record<string, unknown>;
    const status = typeof query.status === 'string' && query.status !== '' ? query.status : 'to_qualify';
    if (!(statuses as readonly string[]).includes(status))
      throw new AppError('INPUT_INVALID', `status: "${status.slice(0, 40)}" is not one of ${statuses.join(', ')}`);
    const { herald } = context;
    const since = herald.clock.now() - 7 * dayMs;
    const [entries, recent, rates] = await Promise.all([
      listQualificationEntries(herald.store, { status: status as QualificationStatus, limit: 100 }),
      recentBounceEvents(herald.store, 30),
      bounceRatesByDomain(herald.store, since, 20),
    ]);
    return context.render('bounces', {
      title: 'Bounces',
      nav: 'bounces',
      status,
      statuses,
      categories: BOUNCE_CATEGORIES,
      // Qualifying writes a site bounce rule: admin, as POST /api/v1/qualification/:id/qualify.
      canQualify: context.may('admin'),
      entries: entries.map(qualificationEntryView),
      recent: recent.map((event) => ({ ...eventView(event), email: event.email })),
      rates: rates.map((r) => ({
        ...r,
        day: new Date(r.day).toISOString().slice(0, 10),
        bouncePercent: percent(r.failed, r.sent + r.failed),
        complaintPercent: percent(r.complaints, r.sent),
      })),
    });
  });

  routes.post('/bounces/:id/qualify', { permission: 'admin', audit: 'qualifyEntry' }, async (context) => {
    const id = entryIdOf(context);
    const body = context.request.body as Record<string, unknown>;
    const category = field(body, 'category', 40);
    if (!category || !isBounceCategory(category))
      throw new AppError('INPUT_INVALID', `category: one of ${BOUNCE_CATEGORIES.join(', ')}`);
    const ruleId = field(body, 'ruleId', 100);
    await qualifyEntry(context.herald, id, { category, ...(ruleId && { ruleId }) });
    return context.reply.redirect('/ui/bounces', 303);
  });

  routes.post('/bounces/:id/ignore', { permission: 'operator', audit: 'ignoreEntry' }, async (context) => {
    await ignoreEntry(context.herald, entryIdOf(context));
    return context.reply.redirect('/ui/bounces', 303);
  });
}
