import type { Static } from '@sinclair/typebox';
import { ignoreEntry, qualificationEntryView, qualifyEntry } from '../../bounce/qualification-actions.ts';
import { listQualificationEntries } from '../../bounce/qualification-store.ts';
import { checkMxPacks } from '../../shaping/pack-check.ts';
import type { ApiContext, HandlerInput } from '../route.ts';
import type * as S from '../schemas.ts';

// The qualification table (`herald bounce pending|qualify|ignore`) and MX rule pack checks
// (`herald rules check`) through the API.

export async function pending(
  { herald }: ApiContext,
  { query }: HandlerInput<unknown, Static<typeof S.qualificationQuery>, unknown>,
) {
  const entries = await listQualificationEntries(herald.store, {
    status: query.status ?? 'to_qualify',
    limit: Math.min(query.limit ?? 50, herald.config.api.maxPageSize),
  });
  return { entries: entries.map(qualificationEntryView) };
}

export async function qualify(
  { herald }: ApiContext,
  { params, body }: HandlerInput<Static<typeof S.idParams>, unknown, Static<typeof S.qualifyBody>>,
) {
  return qualifyEntry(herald, params.id, {
    category: body.category,
    ...(body.ruleId && { ruleId: body.ruleId }),
    ...(body.reason && { reason: body.reason }),
    ...(body.type && { type: body.type }),
  });
}

export async function ignore(
  { herald }: ApiContext,
  { params }: HandlerInput<Static<typeof S.idParams>, unknown, unknown>,
) {
  return ignoreEntry(herald, params.id);
}

/** The packs are sent as text: the server's files are never read on a caller's behalf. */
export async function check(
  _context: ApiContext,
  { body }: HandlerInput<unknown, unknown, Static<typeof S.rulesCheckBody>>,
) {
  return checkMxPacks(
    body.files.map((f) => ({ file: f.name, text: f.content })),
    body.standalone ?? false,
  );
}
