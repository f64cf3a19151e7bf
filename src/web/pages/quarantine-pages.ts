import { AppError } from '../../common/errors.ts';
import {
  addressView,
  parseReleaseSince,
  RELEASE_SINCE_FORMS,
  releaseAddress,
  releaseDomain,
  showAddress,
} from '../../quarantine/operator.ts';
import { countAddressesByState, pageAddresses, parseAddressCursor } from '../../quarantine/quarantine-store.ts';
import type { AddressState } from '../../store/tables.ts';
import type { WebRoutes } from '../dashboard.ts';
import type { WebContext } from '../web-route.ts';

// The quarantine: addresses by state and domain, an address's timeline (every reply and bounce
// that changed it), releasing one address, and releasing a domain's addresses in bulk after a
// dry-run preview. The same functions as `herald quarantine …` and the API.

const states: readonly AddressState[] = ['with_errors', 'quarantined', 'denylisted', 'allowlisted', 'valid'];

function text(source: Record<string, unknown>, field: string, max: number, required = false): string | undefined {
  const value = source[field];
  if (value === undefined || value === '') {
    if (required) throw new AppError('INPUT_INVALID', `${field}: required`);
    return undefined;
  }
  if (typeof value !== 'string' || value.length > max)
    throw new AppError('INPUT_INVALID', `${field}: one value of at most ${max} characters`);
  return value.trim();
}

function sinceOf(value: string): number {
  const at = parseReleaseSince(value);
  if (at === undefined) throw new AppError('INPUT_INVALID', `since: "${value}" is not ${RELEASE_SINCE_FORMS}`);
  return at;
}

const pageSize = 200;

function addressHref(email: string): string {
  return `/ui/quarantine/address?${new URLSearchParams({ email }).toString()}`;
}

export function registerQuarantinePages(routes: WebRoutes): void {
  routes.get('/quarantine', 'viewer', async (context) => {
    const query = context.request.query as Record<string, unknown>;
    const email = text(query, 'email', 320);
    if (email !== undefined) return context.reply.redirect(addressHref(email), 303);
    const state = text(query, 'state', 40);
    if (state !== undefined && !(states as readonly string[]).includes(state))
      throw new AppError('INPUT_INVALID', `state: "${state}" is not an address state (${states.join(', ')})`);
    const domain = text(query, 'domain', 253);
    const afterText = text(query, 'after', 400);
    const after = afterText === undefined ? undefined : parseAddressCursor(afterText);
    const [counts, page] = await Promise.all([
      countAddressesByState(context.herald.store),
      pageAddresses(context.herald.store, {
        ...(state && { states: [state as AddressState] }),
        ...(domain && { domain }),
        ...(after && { after }),
        limit: pageSize,
      }),
    ]);
    const next =
      page.next === null
        ? null
        : `/ui/quarantine?${new URLSearchParams({ ...(state && { state }), ...(domain && { domain }), after: page.next }).toString()}`;
    return context.render('quarantine', {
      title: 'Quarantine',
      nav: 'quarantine',
      counts: states.map((s) => ({ state: s, count: counts[s] ?? 0 })),
      addresses: page.rows.map((row) => ({ ...addressView(row), href: addressHref(row.email) })),
      states,
      filter: { state: state ?? '', domain: domain ?? '' },
      page: { size: pageSize, next, continued: after !== undefined },
    });
  });

  routes.get('/quarantine/address', 'viewer', async (context) => {
    const email = text(context.request.query as Record<string, unknown>, 'email', 320, true)!;
    const shown = await showAddress(context.herald.store, email);
    return context.render('address', {
      title: `Address ${shown.address.email}`,
      nav: 'quarantine',
      address: shown.address,
      known: shown.known,
      timeline: shown.timeline,
      olderEventsNotShown: shown.olderEventsNotShown,
      canRelease: context.may('operator') && shown.address.state !== 'valid',
    });
  });

  routes.post('/quarantine/release', { permission: 'operator', audit: 'releaseAddress' }, async (context) => {
    const body = context.request.body as Record<string, unknown>;
    const email = text(body, 'email', 320, true)!;
    const note = text(body, 'note', 500);
    const { herald } = context;
    await releaseAddress(herald.store, herald.config, { email, note, dryRun: false }, herald.clock.now());
    return context.reply.redirect(addressHref(email), 303);
  });

  routes.get('/quarantine/bulk', 'operator', async (context) => bulkPage(context, false));
  routes.post('/quarantine/bulk', { permission: 'operator', audit: 'releaseDomain' }, async (context) =>
    bulkPage(context, true),
  );
}

/** GET: the form and, once filled, the dry-run preview; POST: the release itself. */
async function bulkPage(context: WebContext, apply: boolean) {
  const source = (apply ? context.request.body : context.request.query) as Record<string, unknown>;
  const domain = text(source, 'domain', 253, apply);
  const since = text(source, 'since', 40, apply);
  const note = text(source, 'note', 500);
  const { herald } = context;
  const result =
    domain !== undefined && since !== undefined
      ? await releaseDomain(
          herald.store,
          herald.config,
          { domain, since: sinceOf(since), sinceText: since, note, dryRun: !apply },
          herald.clock.now(),
        )
      : undefined;
  return context.render('quarantine-bulk', {
    title: 'Bulk release',
    nav: 'quarantine',
    filter: { domain: domain ?? '', since: since ?? '', note: note ?? '' },
    preview: !apply && result ? { released: result.released, sample: result.emails } : null,
    applied: apply && result ? { released: result.released, sample: result.emails } : null,
  });
}
