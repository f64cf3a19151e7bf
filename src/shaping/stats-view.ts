import type { ActiveBackoff } from './backoff.ts';
import type { Suspension } from './breaker.ts';
import {
  mostSevere,
  snapshotRowLimit,
  type DnsStaleAnswer,
  type OmittedRows,
  type PathSnapshot,
  type RuleSnapshot,
  type ShapingSnapshot,
} from './snapshot.ts';

// `herald mx stats`: merges the fresh snapshots of every MTA node into one view (per rule rate
// key and per path), and renders it as text. Pure: snapshots and now in, view out.

export interface MxStatsView {
  takenAt: number;
  nodes: Array<{
    nodeId: string;
    takenAt: number;
    rulesVersion: string;
    backend: 'memory' | 'redis';
    /** The node could not read the shared counters (Redis unreachable): its paths wait meanwhile. */
    throttleError?: string;
  }>;
  rules: Array<RuleSnapshot & { nodes: string[] }>;
  paths: PathSnapshot[];
  backoffs: Array<ActiveBackoff & { nodeId: string }>;
  suspensions: Array<Suspension & { nodeId: string }>;
  /** With Redis: connections open right now across every node, per connection key. */
  sharedConnections?: Record<string, number>;
  /** With Redis configured but not answering: why sharedConnections is missing. */
  sharedConnectionsError?: string;
  /** Paths and rate keys the nodes left out of their snapshots (each lists its snapshotRowLimit most relevant). */
  omitted?: OmittedRows;
  /** Domains and MX hosts sent to with their last good DNS answer, because DNS fails for them. */
  dnsStale?: Array<DnsStaleAnswer & { nodeId: string }>;
}

export function mergeSnapshots(
  snapshots: readonly ShapingSnapshot[],
  now: number,
  sharedConnections?: Record<string, number>,
): MxStatsView {
  const rules = new Map<string, Array<RuleSnapshot & { nodeId: string }>>();
  for (const snapshot of snapshots)
    for (const rule of snapshot.rules) {
      const members = rules.get(rule.rateKey) ?? [];
      members.push({ ...rule, nodeId: snapshot.nodeId });
      rules.set(rule.rateKey, members);
    }
  const omitted = snapshots.filter((s) => s.omitted !== undefined);
  return {
    takenAt: now,
    nodes: snapshots.map((s) => ({
      nodeId: s.nodeId,
      takenAt: s.takenAt,
      rulesVersion: s.rulesVersion,
      backend: s.backend,
      ...(s.throttleError !== undefined && { throttleError: s.throttleError }),
    })),
    rules: [...rules.values()]
      .map((members) => {
        const first = members[0]!;
        const messages = members.reduce((sum, r) => sum + r.messages, 0);
        const { nodeId: _nodeId, ...base } = first;
        return {
          ...base,
          openConnections: members.reduce((sum, r) => sum + r.openConnections, 0),
          messages,
          waiting: members.reduce((sum, r) => sum + r.waiting, 0),
          load: {
            messagesPerHour:
              first.limits.maxMessagesPerHour > 0
                ? Math.round((messages / first.limits.maxMessagesPerHour) * 1000) / 1000
                : 0,
          },
          ...mostSevere(members),
          backoffs: [...new Set(members.flatMap((r) => r.backoffs))],
          nodes: members.map((r) => r.nodeId),
        };
      })
      .sort((a, b) => a.rateKey.localeCompare(b.rateKey)),
    paths: snapshots
      .flatMap((s) => s.paths)
      .sort((a, b) => a.pathId.localeCompare(b.pathId) || a.nodeId.localeCompare(b.nodeId)),
    backoffs: snapshots.flatMap((s) => s.backoffs.map((b) => ({ ...b, nodeId: s.nodeId }))),
    suspensions: snapshots.flatMap((s) => s.suspensions.map((x) => ({ ...x, nodeId: s.nodeId }))),
    dnsStale: snapshots.flatMap((s) => (s.dnsStale ?? []).map((x) => ({ ...x, nodeId: s.nodeId }))),
    ...(sharedConnections ? { sharedConnections } : {}),
    ...(omitted.length > 0 && {
      omitted: {
        paths: omitted.reduce((sum, s) => sum + s.omitted!.paths, 0),
        rules: omitted.reduce((sum, s) => sum + s.omitted!.rules, 0),
        throttledPaths: omitted.reduce((sum, s) => sum + s.omitted!.throttledPaths, 0),
      },
    }),
  };
}

/** `1,234 more rate keys not listed (…)`: what a node left out of its snapshot, or nothing. */
export function omittedNote(count: number, what: string): string | null {
  return count > 0
    ? `${count} more ${what} not listed: each MTA node lists its ${snapshotRowLimit} most relevant (held back by a limit, then waiting, open, busiest)`
    : null;
}

export function formatStatsView(view: MxStatsView): string[] {
  const lines: string[] = [];
  const sharedError =
    view.sharedConnectionsError === undefined
      ? []
      : [`connections open across all nodes (Redis): unknown: ${view.sharedConnectionsError}`];
  if (view.nodes.length === 0)
    return [
      'no shaping snapshot: no MTA has run recently (snapshots are written every shaping.statsIntervalMs while sending)',
      ...sharedError,
    ];
  for (const node of view.nodes)
    lines.push(
      `node ${node.nodeId}: rules ${node.rulesVersion}, ${node.backend} throttle, snapshot ${ago(view.takenAt - node.takenAt)}${node.throttleError ? `; NOT SENDING: ${node.throttleError}` : ''}`,
    );
  lines.push('', 'per rule (rate key = rule|scope):');
  lines.push(
    ...table(
      ['RATE KEY', 'CONNECTIONS', 'MSG/H', 'OF HOURLY', 'WAITING', 'BINDING', 'WHY'],
      view.rules.map((r) => [
        r.rateKey,
        `${r.openConnections} open`,
        `${r.messages}/${Math.round(r.limits.maxMessagesPerHour)}`,
        percent(r.load.messagesPerHour),
        `${r.waiting}`,
        r.binding,
        r.bindingReason,
      ]),
    ),
  );
  const rulesNote = omittedNote(view.omitted?.rules ?? 0, 'rate keys');
  if (rulesNote) lines.push(`  ${rulesNote}`);
  lines.push('', 'per path (rule|public id|MX IP):');
  lines.push(
    ...table(
      [
        'PATH',
        'NODE',
        'CONNECTIONS',
        'MSG/H',
        'CONN ACCEPTED',
        'CONN REFUSED',
        'UNREACH',
        '4XX',
        '5XX',
        'WAITING',
        'BINDING',
      ],
      view.paths.map((p) => [
        p.pathId,
        p.nodeId,
        `${p.openConnections}/${p.limits.maxConnections} open`,
        `${p.messages}/${Math.round(p.limits.maxMessagesPerHour)}`,
        `${p.connectionsAccepted}`,
        `${p.connectionsRefused}`,
        `${p.unreachable}`,
        `${p.deferrals['4xx']}`,
        `${p.deferrals['5xx']}`,
        `${p.waiting}`,
        p.binding,
      ]),
    ),
  );
  const pathsNote = omittedNote(view.omitted?.paths ?? 0, 'paths');
  if (pathsNote)
    lines.push(
      `  ${pathsNote}${view.omitted!.throttledPaths > 0 ? `; ${view.omitted!.throttledPaths} of them held back` : ''}`,
    );
  const shared = view.paths.filter((p) => (p.shares?.length ?? 0) > 0);
  lines.push(
    '',
    shared.length === 0 ? 'budget split per path (last 5 min): no messages' : 'budget split per path (last 5 min):',
  );
  for (const p of shared) lines.push(`  ${p.pathId} [${p.nodeId}]: ${describeShares(p.shares!)}`);
  if (sharedError.length > 0) lines.push('', ...sharedError);
  if (view.sharedConnections) {
    lines.push('', 'connections open across all nodes (Redis):');
    for (const [key, open] of Object.entries(view.sharedConnections).sort()) lines.push(`  ${key}  ${open}`);
  }
  lines.push('', view.backoffs.length === 0 ? 'backoffs: none' : 'backoffs:');
  for (const b of view.backoffs) {
    lines.push(
      `  ${b.key} [${b.nodeId}] ${b.rule}: ${b.limits.join('+')} x${b.factor} since ${iso(b.since)} until ${iso(b.until)}; ${b.evidence.matches} matching replies (${iso(b.evidence.firstAt)}..${iso(b.evidence.lastAt)}), e.g. "${b.evidence.replies[0] ?? ''}"`,
    );
  }
  lines.push(view.suspensions.length === 0 ? 'suspended domains: none' : 'suspended domains:');
  for (const s of view.suspensions) {
    lines.push(
      `  ${s.domain} [${s.nodeId}] until ${iso(s.until)}: ${s.evidence.errors} errors in ${s.evidence.messages} messages (${percent(s.evidence.errorRatio)}), e.g. "${s.evidence.sampleReplies[0] ?? ''}"`,
    );
  }
  const dnsStale = view.dnsStale ?? [];
  lines.push(
    dnsStale.length === 0
      ? 'stale DNS answers: none'
      : 'stale DNS answers (DNS fails; the last good answer is used until mta.mxStaleMaxSeconds past its TTL):',
  );
  for (const s of dnsStale)
    lines.push(`  ${s.name} [${s.nodeId}] since ${iso(s.since)} until ${iso(s.until)}: ${s.reason}`);
  return lines;
}

export type PathShare = NonNullable<PathSnapshot['shares']>[number];

/** `delivery 12 (priority 9, weight 1) 1234 msgs 80%; delivery 7 (priority 5, weight 1) 300 msgs 20%` */
export function describeShares(shares: readonly PathShare[]): string {
  const total = shares.reduce((sum, share) => sum + share.messages, 0);
  return shares
    .map(
      (share) =>
        `delivery ${share.deliveryId} (priority ${share.priority}, weight ${share.weight}) ${share.messages} msgs ${percent(share.messages / total)}`,
    )
    .join('; ');
}

/** The paths a delivery sent on in the last 5 minutes, each with how its budget was split. */
export function deliveryPathShares(
  view: MxStatsView,
  deliveryId: number,
): Array<{ pathId: string; nodeId: string; messages: number; fraction: number; shares: PathShare[] }> {
  return view.paths.flatMap((path) => {
    const shares = path.shares ?? [];
    const own = shares.find((share) => share.deliveryId === deliveryId);
    if (!own) return [];
    const total = shares.reduce((sum, share) => sum + share.messages, 0);
    return [
      { pathId: path.pathId, nodeId: path.nodeId, messages: own.messages, fraction: own.messages / total, shares },
    ];
  });
}

function table(header: string[], rows: string[][]): string[] {
  if (rows.length === 0) return ['  (none)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const render = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`;
  return [render(header), ...rows.map(render)];
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function ago(ms: number): string {
  return ms < 1_000 ? 'just now' : `${Math.round(ms / 1_000)}s ago`;
}
