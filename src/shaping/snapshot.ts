import type { ActiveBackoff } from './backoff.ts';
import type { Suspension } from './breaker.ts';
import type { CompiledRule, CompiledRules } from './compiled-rules.ts';
import type { PathStats } from './path-counters.ts';
import type { ThrottleSnapshot } from './throttle.ts';
import { groupBy } from '../common/group-by.ts';

// What `herald mx stats` shows: each MTA process builds this periodically (pure, from its
// counters) and writes it to the database (stats-store.ts); the CLI merges the fresh ones.

export type BindingLimit = 'maxConnections' | 'maxMessagesPerHour' | 'backoff' | 'none';

export interface Limits {
  maxConnections: number;
  maxMessagesPerHour: number;
  maxMessagesPerConnection: number;
  configuredMaxConnections: number;
  configuredMaxMessagesPerHour: number;
}

export interface PathSnapshot extends PathStats {
  nodeId: string;
  rateKey: string;
  limits: Limits;
  /** Fractions of each limit in use right now (1 = at the limit). */
  load: { connections: number; messagesPerHour: number };
  waiting: number;
  binding: BindingLimit;
  bindingReason: string;
}

export interface RuleSnapshot {
  /** rule|scope: the key the hourly rate is counted on (scope = shared or id<publicId>). */
  rateKey: string;
  rule: string;
  masks: string[];
  shared: boolean;
  publicId: number | null;
  limits: Limits;
  openConnections: number;
  messages: number;
  load: { messagesPerHour: number };
  waiting: number;
  binding: BindingLimit;
  bindingReason: string;
  backoffs: string[];
}

export interface ShapingSnapshot {
  format: 1;
  nodeId: string;
  takenAt: number;
  rulesVersion: string;
  backend: 'memory' | 'redis';
  periodMs: number;
  paths: PathSnapshot[];
  rules: RuleSnapshot[];
  backoffs: ActiveBackoff[];
  suspensions: Suspension[];
  throttle: ThrottleSnapshot;
  /** Why the shared counters could not be read (Redis unreachable); `throttle` is then empty. */
  throttleError?: string;
  /** Rows left out of `paths` and `rules` (past snapshotRowLimit), and how many of those paths were held back. */
  omitted?: OmittedRows;
  /** Domains and MX hosts the node's MX resolver answers from their last good answer because DNS fails for them. */
  dnsStale?: DnsStaleAnswer[];
}

/** A recipient domain or MX host answered from its last good DNS answer (RFC 8767, serve-stale). */
export interface DnsStaleAnswer {
  name: string;
  /** The DNS failure, e.g. "MX lookup for example.com failed: ESERVFAIL". */
  reason: string;
  since: number;
  /** After this the failure is served: the domain's messages are deferred. */
  until: number;
}

export interface OmittedRows {
  paths: number;
  rules: number;
  throttledPaths: number;
}

export interface SnapshotInput {
  nodeId: string;
  now: number;
  periodMs: number;
  rules: CompiledRules;
  backendKind: 'memory' | 'redis';
  throttle: ThrottleSnapshot;
  throttleError?: string | undefined;
  paths: PathStats[];
  backoffs: ActiveBackoff[];
  suspensions: Suspension[];
  denied: ReadonlyMap<string, { limit: BindingLimit; at: number }>;
  waiting: ReadonlyMap<string, { count: number; at: number }>;
  rateKeyFor(rule: CompiledRule, publicId: number, mxHost: string): string;
  effectiveRate(rule: CompiledRule, publicId: number, mxHost: string): number;
  maxConnections(rule: CompiledRule, publicId: number, mxHost: string): number;
}

/** A denial or a waiting count older than this no longer describes "right now". */
export const recentMs = 60_000;

/**
 * Paths and rule rate keys one snapshot lists at most. A list of 50,000 small company domains gives
 * 50,000 MX hosts within the hour, each its own path and (generic rule, perMxHost) rate key: listing
 * them all made a 51 MB row rewritten every statsIntervalMs and read again by every `/metrics`
 * refresh, `herald mx stats`, the doctor and the dashboard. The rows that matter are kept (held
 * back by a limit, then waiting, open, busiest or failing); the others are counted in `omitted`.
 */
export const snapshotRowLimit = 500;
const nearLimit = 0.95;

/** A path's figures that decide whether it is listed and what its rule shows: every path has one. */
interface PathRow {
  stats: PathStats;
  rateKey: string;
  limits: Limits;
  waiting: number;
  binding: BindingLimit;
  bindingReason: string;
  activity: number;
}

/** A rate key's totals over its paths, in the order the paths come. */
interface RuleTotals {
  rateKey: string;
  rule: CompiledRule;
  first: PathRow;
  messages: number;
  openConnections: number;
  waiting: number;
  severest: { binding: BindingLimit; bindingReason: string };
}

export function buildSnapshot(input: SnapshotInput): ShapingSnapshot {
  // Indexed once: 50,000 MX hosts with a backoff on one host in fifty made a scan of every backoff
  // per path and per rate key, seconds of blocked event loop per snapshot.
  const backoffsByKey = groupBy(input.backoffs, (b) => b.key);
  // Each path's row and each rate key's totals are figures only; the snapshot's rows (objects of
  // 20 fields, a copy of the masks) are built for the listed ones. Building all 50,000 of each
  // cost ~1.4 s of CPU per snapshot of 50,000 MX hosts, every statsIntervalMs (bench/shaping-snapshot.ts).
  const rows: PathRow[] = [];
  const totals = new Map<string, RuleTotals>();
  for (const stats of input.paths) {
    const rule = input.rules.byName(stats.rule);
    if (!rule) continue; // rule removed by a reload: its counters age out
    const rateKey = input.rateKeyFor(rule, stats.publicId, stats.mxHost);
    const limits = limitsOf(
      rule,
      input.effectiveRate(rule, stats.publicId, stats.mxHost),
      input.maxConnections(rule, stats.publicId, stats.mxHost),
    );
    const waiting = input.waiting.get(stats.pathId);
    const row: PathRow = {
      stats,
      rateKey,
      limits,
      waiting: waiting && input.now - waiting.at <= recentMs ? waiting.count : 0,
      ...bindingOf({
        open: stats.openConnections,
        messages: stats.messages,
        limits,
        denied: input.denied.get(stats.pathId),
        backoffs: backoffsByKey.get(rateKey) ?? [],
        now: input.now,
        rule: rule.name,
        scope: rateScope(rule),
      }),
      activity: pathActivity(stats),
    };
    rows.push(row);
    const total = totals.get(rateKey);
    if (!total)
      totals.set(rateKey, {
        rateKey,
        rule,
        first: row,
        messages: stats.messages,
        openConnections: stats.openConnections,
        waiting: row.waiting,
        severest: severity[row.binding] > 0 ? row : noBinding,
      });
    else {
      total.messages += stats.messages;
      total.openConnections += stats.openConnections;
      total.waiting += row.waiting;
      if (severity[row.binding] > severity[total.severest.binding]) total.severest = row;
    }
  }
  // Paths in the counters' order, rate keys in name order; among rows as relevant, the first in that order.
  const listedRows = mostRelevant(rows, {
    binding: (row) => row.binding,
    waiting: (row) => row.waiting,
    open: (row) => row.stats.openConnections,
    activity: (row) => row.activity,
    order: () => 0,
  });
  const ruleTotals = [...totals.values()];
  const byRateKey = (a: RuleTotals, b: RuleTotals) => a.rateKey.localeCompare(b.rateKey);
  const listedTotals = mostRelevant(ruleTotals, {
    binding: (total) => total.severest.binding,
    waiting: (total) => total.waiting,
    open: (total) => total.openConnections,
    activity: (total) => total.messages,
    order: byRateKey,
  }).sort(byRateKey);
  const listedPaths = listedRows.map((row) => pathSnapshot(row, input.nodeId));
  const listedRules = listedTotals.map((total) => ruleSnapshot(total, backoffsByKey));
  const omitted: OmittedRows = {
    paths: rows.length - listedPaths.length,
    rules: ruleTotals.length - listedRules.length,
    throttledPaths:
      rows.filter((p) => p.binding !== 'none').length - listedPaths.filter((p) => p.binding !== 'none').length,
  };
  return {
    format: 1,
    nodeId: input.nodeId,
    takenAt: input.now,
    rulesVersion: input.rules.version,
    backend: input.backendKind,
    periodMs: input.periodMs,
    paths: listedPaths,
    rules: listedRules,
    backoffs: input.backoffs,
    suspensions: input.suspensions,
    throttle:
      omitted.paths > 0 || omitted.rules > 0
        ? listedThrottle(input.throttle, listedPaths, listedRules)
        : input.throttle,
    ...(input.throttleError !== undefined && { throttleError: input.throttleError }),
    ...((omitted.paths > 0 || omitted.rules > 0) && { omitted }),
  };
}

const noBinding = { binding: 'none', bindingReason: 'below every limit' } as const;

function pathSnapshot(row: PathRow, nodeId: string): PathSnapshot {
  const { stats, limits } = row;
  return {
    ...stats,
    nodeId,
    rateKey: row.rateKey,
    limits,
    load: {
      connections: ratio(stats.openConnections, limits.maxConnections),
      messagesPerHour: ratio(stats.messages, limits.maxMessagesPerHour),
    },
    waiting: row.waiting,
    binding: row.binding,
    bindingReason: row.bindingReason,
  };
}

function ruleSnapshot(total: RuleTotals, backoffsByKey: ReadonlyMap<string, readonly ActiveBackoff[]>): RuleSnapshot {
  const { rule, first } = total;
  return {
    rateKey: total.rateKey,
    rule: rule.name,
    masks: [...rule.masks],
    shared: rule.shared,
    publicId: rule.shared ? null : first.stats.publicId,
    limits: first.limits,
    openConnections: total.openConnections,
    messages: total.messages,
    load: { messagesPerHour: ratio(total.messages, first.limits.maxMessagesPerHour) },
    waiting: total.waiting,
    binding: total.severest.binding,
    bindingReason: total.severest.bindingReason,
    backoffs: (backoffsByKey.get(total.rateKey) ?? []).map((b) => b.rule),
  };
}

/**
 * The throttle's figures for the listed rate keys and paths only: the backend has one per rate key
 * and connection key, so 50,000 small MX hosts gave a 3.9 MB snapshot row (written every
 * statsIntervalMs, read by every /metrics refresh, the doctor and the dashboard) past the row limit.
 */
function listedThrottle(
  throttle: ThrottleSnapshot,
  paths: readonly PathSnapshot[],
  rules: readonly RuleSnapshot[],
): ThrottleSnapshot {
  const listed: ThrottleSnapshot = { connections: {}, rates: {} };
  for (const path of paths) {
    const key = `${path.rateKey}|${path.mxIp}`;
    const open = throttle.connections[key];
    if (open !== undefined) listed.connections[key] = open;
  }
  for (const rule of rules) {
    const rate = throttle.rates[rule.rateKey];
    if (rate !== undefined) listed.rates[rule.rateKey] = rate;
  }
  return listed;
}

function pathActivity(path: PathStats): number {
  return (
    path.messages +
    path.connectionsRefused +
    path.unreachable +
    path.deferrals['4xx'] +
    path.deferrals['5xx'] +
    path.deferrals.local
  );
}

/** What ranks a row of the snapshot: the limit holding it back, then waiting, open and busy figures. */
interface Relevance<T> {
  binding(row: T): BindingLimit;
  waiting(row: T): number;
  open(row: T): number;
  activity(row: T): number;
  /** Among rows as relevant, the first by this order (0: their own order). */
  order(a: T, b: T): number;
}

/** At most snapshotRowLimit rows, in their own order: held back first, then waiting, open, busiest. */
function mostRelevant<T>(rows: readonly T[], rank: Relevance<T>): T[] {
  if (rows.length <= snapshotRowLimit) return [...rows];
  const kept = rows
    .map((_, index) => index)
    .sort((i, j) => {
      const a = rows[i]!;
      const b = rows[j]!;
      return (
        severity[rank.binding(b)] - severity[rank.binding(a)] ||
        rank.waiting(b) - rank.waiting(a) ||
        rank.open(b) - rank.open(a) ||
        rank.activity(b) - rank.activity(a) ||
        rank.order(a, b) ||
        i - j
      );
    })
    .slice(0, snapshotRowLimit)
    .sort((i, j) => i - j);
  return kept.map((index) => rows[index]!);
}

/** Which limit holds traffic back right now, and why, in words an operator can act on. */
export function bindingOf(input: {
  open: number;
  messages: number;
  limits: Limits;
  denied?: { limit: BindingLimit; at: number } | undefined;
  backoffs: readonly ActiveBackoff[];
  now: number;
  /** The rule, and what its hourly rate is counted per ("MX host"), for the pace in words. */
  rule?: string;
  scope?: string;
}): { binding: BindingLimit; bindingReason: string } {
  const { limits, backoffs } = input;
  const backoffText = backoffs
    .map(
      (b) =>
        `${b.rule} x${b.factor} until ${new Date(b.until).toISOString()} (${b.evidence.matches} replies like "${b.evidence.replies[0] ?? ''}")`,
    )
    .join('; ');
  const recentDenial = input.denied && input.now - input.denied.at <= recentMs ? input.denied.limit : undefined;
  const atConnections = input.open >= limits.maxConnections;
  const atRate = input.messages >= limits.maxMessagesPerHour * nearLimit;
  if (recentDenial === 'maxConnections' || (!recentDenial && atConnections)) {
    const reduced =
      limits.maxConnections < limits.configuredMaxConnections
        ? ` (reduced from ${limits.configuredMaxConnections} by backoff: ${backoffText})`
        : '';
    return {
      binding: 'maxConnections',
      bindingReason: `${input.open}/${limits.maxConnections} connections open${reduced}`,
    };
  }
  if (
    recentDenial === 'backoff' ||
    ((recentDenial === 'maxMessagesPerHour' || atRate) &&
      limits.maxMessagesPerHour < limits.configuredMaxMessagesPerHour)
  ) {
    return {
      binding: 'backoff',
      bindingReason: `rate ${Math.round(limits.maxMessagesPerHour)}/h instead of ${limits.configuredMaxMessagesPerHour}/h: ${backoffText}`,
    };
  }
  if (recentDenial === 'maxMessagesPerHour' || atRate) {
    return {
      binding: 'maxMessagesPerHour',
      // The rate is smoothed, so the pace binds long before the hour's count nears the limit.
      bindingReason: `pacing ${pace(limits.maxMessagesPerHour)} msg/s per ${input.scope ?? 'rate key'}: ${input.rule ? `rule ${input.rule}, ` : ''}maxMessagesPerHour ${Math.round(limits.maxMessagesPerHour)} (one message every ${Math.round(3_600_000 / limits.maxMessagesPerHour)} ms; ${input.messages} in the last hour)`,
    };
  }
  return { binding: 'none', bindingReason: 'below every limit' };
}

const severity: Record<BindingLimit, number> = { none: 0, maxConnections: 1, maxMessagesPerHour: 2, backoff: 3 };

export function mostSevere<T extends { binding: BindingLimit; bindingReason: string }>(
  items: readonly T[],
): { binding: BindingLimit; bindingReason: string } {
  let best: { binding: BindingLimit; bindingReason: string } = { binding: 'none', bindingReason: 'below every limit' };
  for (const item of items) if (severity[item.binding] > severity[best.binding]) best = item;
  return { binding: best.binding, bindingReason: best.bindingReason };
}

function limitsOf(rule: CompiledRule, rate: number, maxConnections: number): Limits {
  return {
    maxConnections,
    maxMessagesPerHour: rate,
    maxMessagesPerConnection: rule.maxMessagesPerConnection,
    configuredMaxConnections: rule.maxConnections,
    configuredMaxMessagesPerHour: rule.maxMessagesPerHour,
  };
}

/** Messages per second of an hourly rate, two decimals (3000/h → 0.83). */
function pace(perHour: number): string {
  return (Math.round((perHour / 3600) * 100) / 100).toString();
}

/** What a rule's hourly rate is counted per, in an operator's words. */
function rateScope(rule: CompiledRule): string {
  if (rule.perMxHost) return 'MX host';
  return rule.shared ? 'rule (every source address together)' : 'public id';
}

function ratio(value: number, limit: number): number {
  return limit > 0 ? Math.round((value / limit) * 1000) / 1000 : 0;
}
