import type { Static } from '@sinclair/typebox';
import { createDestinationPolicy, hostAddresses } from '../../webhooks/destinations.ts';
import { outboundStatuses } from '../../midsourcing/status.ts';
import { updateRulePacksNow } from '../../rules-versions/operator-update.ts';
import { listVersions } from '../../rules-versions/rule-version-store.ts';
import { rollbackRulePack } from '../../rules-versions/update.ts';
import { ruleVersionView } from '../../rules-versions/versions-view.ts';
import { matchMxHost, readMxStats } from '../../shaping/mx-view.ts';
import { readiness } from '../../metrics/server.ts';
import type { ApiAuditRow } from '../../store/tables.ts';
import { runMaintenance } from '../../workflows/maintenance.ts';
import { listAudit } from '../api-store.ts';
import { keysetPage, rowsToRead } from '../keyset-page.ts';
import { createToken, listTokens, revokeToken } from '../tokens.ts';
import type { ApiContext, HandlerInput } from '../route.ts';
import type * as S from '../schemas.ts';

// Doctor, MX, rules, database, mid-sourcing status, tokens, audit and health: the same functions as
// `herald doctor|mx|rules|db|mid|tokens`.

export async function doctor({ doctorRuns }: ApiContext) {
  const diagnosis = await doctorRuns.get('all');
  return { checkedAt: diagnosis.checkedAt, checks: diagnosis.checks, findings: diagnosis.findings };
}

export async function mxStats(
  { herald }: ApiContext,
  { query }: HandlerInput<unknown, Static<typeof S.mxStatsQuery>, unknown>,
) {
  return readMxStats(herald, query.maxAge ?? 300);
}

export async function mxMatch(
  { herald }: ApiContext,
  { query }: HandlerInput<unknown, Static<typeof S.mxMatchQuery>, unknown>,
) {
  return matchMxHost(herald.config, query.host, query.publicId ?? 0);
}

export async function ruleVersions(
  { herald }: ApiContext,
  { query }: HandlerInput<unknown, Static<typeof S.ruleVersionsQuery>, unknown>,
) {
  const rows = await listVersions(herald.store, { ...(query.kind && { kind: query.kind }), limit: query.limit ?? 50 });
  return { versions: rows.map(ruleVersionView) };
}

export async function rulesUpdate(
  { herald }: ApiContext,
  { body }: HandlerInput<unknown, unknown, Static<typeof S.rulesUpdateBody> | undefined>,
) {
  // A source named in the request goes where the webhooks may (webhooks.deniedNetworks): an admin
  // token must not make Herald fetch its cloud metadata or a service on loopback and read the answer
  // back in the error. Without one, deliverability.source is the operator's, fetched as set.
  if (body?.source === undefined || body.source === herald.config.deliverability.source)
    return updateRulePacksNow(herald, body?.source);
  return updateRulePacksNow(herald, body.source, {
    policy: createDestinationPolicy(herald.config.webhooks, hostAddresses()),
  });
}

export async function rulesRollback(
  { herald }: ApiContext,
  { body }: HandlerInput<unknown, unknown, Static<typeof S.rulesRollbackBody>>,
) {
  return rollbackRulePack({ store: herald.store, config: herald.config, now: herald.clock.now() }, body.kind);
}

export async function dbStatus({ databaseStatuses }: ApiContext) {
  // dbstat and a count per table on SQLite: one read shared by every caller (the dashboard too).
  return databaseStatuses.get('all');
}

export async function dbMaintain({ herald, databaseStatuses }: ApiContext) {
  const result = await runMaintenance(
    herald.store,
    herald.config,
    herald.clock,
    { log: async () => {}, keepAlive: async () => {} },
    { source: 'api', convertSqlite: false },
  );
  // The next status reads afresh (sizes, dead rows and the last maintenance changed).
  databaseStatuses.invalidate('all');
  return result;
}

export async function midStatus({ herald }: ApiContext) {
  return { deliveries: await outboundStatuses(herald.store) };
}

export async function tokens({ herald }: ApiContext) {
  return { tokens: await listTokens(herald.store) };
}

export async function tokenCreate(
  { herald }: ApiContext,
  { body }: HandlerInput<unknown, unknown, Static<typeof S.tokenCreateBody>>,
) {
  const created = await createToken(herald.store, { role: body.role, name: body.name }, herald.clock.now());
  return { token: created.token, ...created.view };
}

export async function tokenRevoke(
  { herald }: ApiContext,
  { params }: HandlerInput<Static<typeof S.tokenIdParams>, unknown, unknown>,
) {
  return revokeToken(herald.store, params.tokenId, herald.clock.now());
}

export async function audit(
  { herald }: ApiContext,
  { query }: HandlerInput<unknown, Static<typeof S.auditQuery>, unknown>,
) {
  const limit = Math.min(query.limit ?? 100, herald.config.api.maxPageSize);
  const rows = await listAudit(herald.store, {
    ...(query.before !== undefined && { beforeId: query.before }),
    limit: rowsToRead(limit),
  });
  const page = keysetPage(rows, limit);
  return { items: page.rows.map(auditView), next: page.next };
}

function auditView(row: ApiAuditRow) {
  return {
    id: row.id,
    at: new Date(row.at).toISOString(),
    tokenId: row.token_id,
    role: row.role,
    method: row.method,
    route: row.route,
    path: row.path,
    status: row.status,
    errorCode: row.error_code,
    client: row.client,
  };
}

export async function healthz() {
  return { status: 'ok' as const };
}

/** Ready: the database answers and every migration this code knows has run. */
export async function readyz({ herald }: ApiContext, { reply }: HandlerInput<unknown, unknown, unknown>) {
  const state = await readiness(herald);
  if (!state.ready) reply.code(503);
  return {
    status: state.ready ? ('ready' as const) : ('not_ready' as const),
    pendingMigrations: state.pendingMigrations,
    ...(state.reason && { reason: state.reason }),
  };
}
