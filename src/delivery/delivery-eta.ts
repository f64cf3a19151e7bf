import { AppError } from '../common/errors.ts';
import type { Herald } from '../main.ts';
import { loadRuleFiles, ruleFilesFor } from '../shaping/rule-loader.ts';
import { formatIssue } from '../shaping/rule-pack.ts';
import { readShapingSnapshots } from '../shaping/stats-store.ts';
import { mergeSnapshots } from '../shaping/stats-view.ts';
import { getDelivery } from './delivery-store.ts';
import { estimateFinish, type Eta } from './eta.ts';
import { deliveriesSendingBefore, knownMxHosts, pendingByDomainForEta } from './eta-store.ts';

// The edge of a delivery's ETA (`herald delivery eta N`, `delivery show`): reads the pending logs,
// the MX rules in force, the MTA nodes' active backoffs and the affinity, and the pending logs of
// the deliveries sending before it, then estimates. The what-if
// options change nothing: they only replace a rule's rate or add the addresses of another affinity
// in the estimate.

export interface EtaOptions {
  /** Rule name → maxMessagesPerHour to assume. */
  ruleOverrides?: ReadonlyMap<string, number>;
  /** Affinities whose source addresses are added to the delivery's own. */
  addAffinities?: readonly string[];
}

const snapshotMaxAgeMs = 300_000;

export async function deliveryEta(herald: Herald, deliveryId: number, options: EtaOptions = {}): Promise<Eta> {
  const { store, config } = herald;
  const now = herald.clock.now();
  const delivery = await getDelivery(store, deliveryId);
  const loaded = await loadRuleFiles(
    ruleFilesFor({
      rulesFiles: config.shaping.rulesFiles,
      ...(config.shaping.siteRulesDir ? { siteRulesDir: config.shaping.siteRulesDir } : {}),
    }),
  );
  if (!loaded.ok) throw new AppError('RULES_INVALID', loaded.issues.map(formatIssue).join('\n'));
  for (const name of options.ruleOverrides?.keys() ?? [])
    if (!loaded.rules.byName(name))
      throw new AppError(
        'INPUT_INVALID',
        `--set: no MX rule is called "${name}" (rules: ${loaded.rules.rules.map((r) => r.name).join(', ')})`,
      );
  const affinities = config.shaping.affinities;
  const sourcesOf = (name: string) => affinities.find((a) => a.name === name)?.addresses ?? [];
  for (const name of options.addAffinities ?? [])
    if (sourcesOf(name).length === 0)
      throw new AppError(
        'INPUT_INVALID',
        `--add-affinity: shaping.affinities has no affinity "${name}" (defined: ${affinities.map((a) => a.name).join(', ') || 'none'})`,
      );
  const sourcesFor = (affinity: string | null, extra: readonly string[] = []) => {
    const sources = [...sourcesOf(affinity ?? 'default'), ...extra.flatMap(sourcesOf)].map((a) => ({
      publicId: a.publicId,
      weight: a.weight,
    }));
    return sources.length > 0 ? sources : [{ publicId: 0, weight: 1 }];
  };
  const view = mergeSnapshots(await readShapingSnapshots(store, now - snapshotMaxAgeMs), now);
  const backoffFactors = new Map<string, number>();
  for (const backoff of view.backoffs)
    if (backoff.until > now && backoff.limits.includes('rate'))
      backoffFactors.set(backoff.key, Math.min(backoffFactors.get(backoff.key) ?? 1, backoff.factor));
  const ruleOverrides = new Map(
    [...(options.ruleOverrides ?? new Map()).entries()].map(([k, v]) => [k.toLowerCase(), v]),
  );
  const common = { now, rules: loaded.rules, ratePeriodMs: config.shaping.ratePeriodMs, backoffFactors, ruleOverrides };

  // Deliveries that started earlier send first where they share a rate key: their pending messages,
  // placed on rate keys the same way, are ahead of this delivery's.
  const ahead = new Map<string, number>();
  const startedAt =
    delivery.state === 'in_progress' && delivery.started_at !== null ? Number(delivery.started_at) : null;
  for (const earlier of await deliveriesSendingBefore(store, deliveryId, startedAt)) {
    const theirs = estimateFinish({
      ...common,
      deliveryId: earlier.id,
      validUntil: null,
      domains: await domainsWithMx(store, earlier.id),
      sources: sourcesFor(earlier.affinity),
    });
    for (const group of theirs.groups) ahead.set(group.rateKey, (ahead.get(group.rateKey) ?? 0) + group.pending);
  }

  const validUntil =
    delivery.valid_until !== null ? Number(delivery.valid_until) : now + Number(delivery.validity_seconds) * 1_000;
  return estimateFinish({
    ...common,
    deliveryId,
    validUntil,
    domains: await domainsWithMx(store, deliveryId),
    sources: sourcesFor(delivery.affinity, options.addAffinities),
    ahead,
  });
}

/** A delivery's pending logs by domain, each domain with the MX host it met, or earlier deliveries met. */
async function domainsWithMx(store: Herald['store'], deliveryId: number) {
  const domains = await pendingByDomainForEta(store, deliveryId);
  const unknown = domains.filter((d) => d.mxHost === null && d.pending > 0).map((d) => d.domain);
  const known = unknown.length > 0 ? await knownMxHosts(store, unknown) : new Map<string, string>();
  return domains.map((d) => ({ ...d, mxHost: d.mxHost ?? known.get(d.domain) ?? null }));
}

/** States in which a delivery still has messages to send, so an ETA means something. */
export const etaStates: ReadonlySet<string> = new Set(['prepared', 'start_pending', 'in_progress', 'paused']);

/**
 * The ETA shown with a delivery (`delivery show`, the API's delivery route): undefined when it has
 * nothing left to send, or when the MX rules do not load (the doctor and `rules check` say why).
 */
export async function shownDeliveryEta(herald: Herald, deliveryId: number, state: string): Promise<Eta | undefined> {
  return etaStates.has(state) ? etaUnlessRulesInvalid(herald, deliveryId) : undefined;
}

/** The delivery's ETA, undefined when the MX rules do not load; for a delivery in one of etaStates. */
export async function etaUnlessRulesInvalid(herald: Herald, deliveryId: number): Promise<Eta | undefined> {
  try {
    return await deliveryEta(herald, deliveryId);
  } catch (error) {
    if (error instanceof AppError && error.code === 'RULES_INVALID') return undefined;
    throw error;
  }
}

/**
 * Rate keys an ETA lists, slowest first. The generic rule counts one rate key per MX host: a list of
 * 100,000 small domains gave 25,000 groups, a 6 MB `GET /deliveries/{id}` and 25,000 lines of
 * `herald delivery eta`. The slowest bound the finish; the others are counted.
 */
export const etaListedGroups = 50;
/** Domains listed per rate key (a provider's rule gathers every domain it hosts: thousands on Google). */
export const etaListedDomains = 20;

/** The ETA as JSON (`--json` of the CLI, the API): times as ISO 8601, an unbounded estimate as null hours. */
export function etaView(eta: Eta) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    deliveryId: eta.deliveryId,
    computedAt: new Date(eta.computedAt).toISOString(),
    pending: eta.pending,
    finishAt: iso(eta.finishAt),
    hours: Number.isFinite(eta.hours) ? eta.hours : null,
    boundBy: eta.boundBy
      ? { rule: eta.boundBy.rule, rateKey: eta.boundBy.rateKey, messagesPerHour: eta.boundBy.messagesPerHour }
      : null,
    validUntil: iso(eta.validUntil),
    expiring: eta.expiring,
    groups: eta.groups.slice(0, etaListedGroups).map((group) => ({
      ...group,
      domains: group.domains.slice(0, etaListedDomains),
      domainCount: group.domains.length,
    })),
    groupsOmitted: Math.max(0, eta.groups.length - etaListedGroups),
  };
}
