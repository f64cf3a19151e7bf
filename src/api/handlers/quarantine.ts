import type { Static } from '@sinclair/typebox';
import { AppError } from '../../common/errors.ts';
import {
  addressView,
  listAddress,
  parseReleaseSince,
  RELEASE_SINCE_FORMS,
  releaseAddress,
  releaseDomain,
  showAddress,
  suppressAddresses,
} from '../../quarantine/operator.ts';
import { countAddressesByState, pageAddresses, parseAddressCursor } from '../../quarantine/quarantine-store.ts';
import type { ApiContext, HandlerInput } from '../route.ts';
import type * as S from '../schemas.ts';

// The quarantine through the API: the same functions as `herald quarantine …`.

type Email = Static<typeof S.emailParams>;

export async function search(
  { herald }: ApiContext,
  { query }: HandlerInput<unknown, Static<typeof S.quarantineQuery>, unknown>,
) {
  const counts = await countAddressesByState(herald.store);
  const page = await pageAddresses(herald.store, {
    ...(query.state && { states: [query.state] }),
    ...(query.domain && { domain: query.domain }),
    ...(query.after && { after: parseAddressCursor(query.after) }),
    limit: Math.min(query.limit ?? 100, herald.config.api.maxPageSize),
  });
  return { counts, addresses: page.rows.map(addressView), next: page.next };
}

export async function show({ herald }: ApiContext, { params }: HandlerInput<Email, unknown, unknown>) {
  const { address, known, timeline } = await showAddress(herald.store, params.email);
  return { address, known, timeline };
}

export async function release(
  { herald }: ApiContext,
  { params, body }: HandlerInput<Email, unknown, Static<typeof S.releaseOneBody> | undefined>,
) {
  const dryRun = body?.dryRun ?? false;
  const result = await releaseAddress(
    herald.store,
    herald.config,
    { email: params.email, note: body?.note, dryRun },
    herald.clock.now(),
  );
  return { released: result.released, dryRun, sample: result.emails };
}

export async function releaseBulk(
  { herald }: ApiContext,
  { body }: HandlerInput<unknown, unknown, Static<typeof S.releaseDomainBody>>,
) {
  const since = parseReleaseSince(body.since);
  if (since === undefined)
    throw new AppError('INPUT_INVALID', `since: "${body.since}" is not ${RELEASE_SINCE_FORMS}`, {
      details: { errors: [{ path: '/body/since', message: `not ${RELEASE_SINCE_FORMS}` }] },
    });
  const dryRun = body.dryRun ?? false;
  const result = await releaseDomain(
    herald.store,
    herald.config,
    { domain: body.domain, since, sinceText: body.since, note: body.note, dryRun },
    herald.clock.now(),
  );
  return { released: result.released, dryRun, sample: result.emails };
}

export function listAs(action: 'allowlist' | 'denylist') {
  return async (
    { herald }: ApiContext,
    { params, body }: HandlerInput<Email, unknown, Static<typeof S.noteBody> | undefined>,
  ) =>
    addressView(
      await listAddress(
        herald.store,
        herald.config,
        { email: params.email, action, note: body?.note },
        herald.clock.now(),
      ),
    );
}

export async function suppress(
  { herald }: ApiContext,
  { body }: HandlerInput<unknown, unknown, Static<typeof S.suppressBody>>,
) {
  return suppressAddresses(
    herald.store,
    herald.config,
    { emails: body.addresses, note: body.note },
    herald.clock.now(),
  );
}
