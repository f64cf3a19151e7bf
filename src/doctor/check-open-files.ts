import type { HeraldConfig } from '../config/schema.ts';
import type { DoctorCheck, Finding } from './finding.ts';

// Every connection a process holds is a file descriptor. When `herald start` runs several roles in
// one process, the connection caps of its listeners, the MTA's outgoing connections and the
// database pool add up; over the process's open-file limit (RLIMIT_NOFILE), accept() and connect()
// fail with EMFILE and the caps no longer protect anything: a flood on the tracking port takes the
// descriptors the MTA sends with. Node raises its soft limit to the hard one at start, so the limit
// read from a Node process is the one `herald start` gets from the same shell or systemd unit.

/** One configured cap counted against the limit. */
export interface DescriptorUse {
  /** The configuration key that sets it; null: not configurable (the database pool, the process itself). */
  key: string | null;
  /** The role it belongs to (`process` for what every process holds). */
  role: string;
  count: number;
}

/** The soft RLIMIT_NOFILE of a process, or why it could not be read. */
export type OpenFileLimit = { kind: 'known'; soft: number | 'unlimited' } | { kind: 'unknown'; reason: string };

/** What a process holds besides connections: stdio, log files, the event loop, DNS sockets, worker threads. */
export const processReserve = 64;
/** PostgreSQL: the pool's connections (store/database.ts); SQLite: the database file, its WAL and shared memory. */
const databaseDescriptors = { postgres: 10, sqlite: 3 } as const;

/** The descriptors the given roles (absent: every role, what `herald start` runs) can hold at once with `config`, largest first. */
export function descriptorUses(config: HeraldConfig, roles?: readonly string[]): DescriptorUse[] {
  const uses: DescriptorUse[] = [];
  const runs = (role: string) => roles === undefined || roles.includes(role);
  if (runs('tracking'))
    uses.push({ key: 'tracking.maxConnections', role: 'tracking', count: config.tracking.maxConnections });
  if (runs('api')) uses.push({ key: 'api.maxConnections', role: 'api', count: config.api.maxConnections });
  // The mid role listens only on an execution instance.
  if (runs('mid') && config.midsourcing.mode === 'execution')
    uses.push({
      key: 'midsourcing.listen.maxConnections',
      role: 'mid',
      count: config.midsourcing.listen.maxConnections,
    });
  // metrics.port is served by a process without the api role (the api serves /metrics on its own port).
  if (config.metrics.port !== null && !runs('api'))
    uses.push({ key: 'metrics.maxConnections', role: 'metrics', count: config.metrics.maxConnections });
  if (runs('inbound')) uses.push({ key: 'inbound.maxClients', role: 'inbound', count: config.inbound.maxClients });
  // The MTA opens a connection only for a message waiting for one (at most mta.maxConnectionsPerMx, or
  // an MX rule's maxConnections, per path): the messages it holds bound its connections, whatever the paths.
  if (runs('mta')) uses.push({ key: 'mta.maxQueued', role: 'mta', count: config.mta.maxQueued });
  const dialect = config.database.url.startsWith('postgres') ? 'postgres' : 'sqlite';
  uses.push({ key: null, role: `database (${dialect})`, count: databaseDescriptors[dialect] });
  uses.push({ key: null, role: 'process', count: processReserve });
  return uses.sort((a, b) => b.count - a.count);
}

/** What is wrong, why and how to fix it; undefined: the caps fit within the limit. */
export interface OpenFilesVerdict {
  severity: 'warning' | 'info';
  symptom: string;
  cause: string;
  fix: string;
  evidence: { total: number; limit: number | 'unlimited' | null; uses: DescriptorUse[] };
}

/** Pure: compares the sum of `uses` with the process's soft open-file limit. */
export function judgeOpenFiles(uses: readonly DescriptorUse[], limit: OpenFileLimit): OpenFilesVerdict | undefined {
  const total = uses.reduce((sum, use) => sum + use.count, 0);
  const listed = uses.map((use) => `${use.key ?? use.role} ${use.count}`).join(', ');
  if (limit.kind === 'unknown')
    return {
      severity: 'info',
      symptom: `the open-file limit could not be checked: ${limit.reason}`,
      cause: `the roles' connection caps add up to ${total} descriptors (${listed})`,
      fix: `compare ${total} with \`ulimit -n\` in the shell or LimitNOFILE= in the service that runs herald start`,
      evidence: { total, limit: null, uses: [...uses] },
    };
  if (limit.soft === 'unlimited' || total <= limit.soft) return undefined;
  const caps = uses.filter((use) => use.key !== null);
  // Headroom of a quarter, in whole thousands: the sum is of caps, and a process also opens files now and then.
  const raiseTo = Math.ceil((total * 1.25) / 1024) * 1024;
  return {
    severity: 'warning',
    symptom: `the connection caps add up to ${total} file descriptors, over this process's open-file limit of ${limit.soft}`,
    cause: `past ${limit.soft} open descriptors, accepting or opening a connection fails (EMFILE) in every role of the process, whatever its own cap (${listed})`,
    fix: `lower the largest caps (${caps
      .slice(0, 3)
      .map((use) => `${use.key} ${use.count}`)
      .join(
        ', ',
      )}) so they add up to less than ${limit.soft}, run the roles in separate processes (herald start --roles), or raise the limit to ${raiseTo}: LimitNOFILE=${raiseTo} in the systemd unit's [Service] section, or \`ulimit -n ${raiseTo}\` before herald start (up to the hard limit, \`ulimit -Hn\`)`,
    evidence: { total, limit: limit.soft, uses: [...uses] },
  };
}

/** Pure: the soft "Max open files" of a /proc/<pid>/limits text (Linux). */
export function parseOpenFileLimit(text: string): OpenFileLimit {
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  if (soft === 'unlimited') return { kind: 'known', soft: 'unlimited' };
  if (soft === undefined || !/^\d+$/.test(soft)) return { kind: 'unknown', reason: 'no "Max open files" line' };
  return { kind: 'known', soft: Number(soft) };
}

export const openFilesCheck: DoctorCheck = {
  name: 'open-files',
  description: "the connection caps of the roles herald start runs, added up, against the process's open-file limit",
  run(snapshot): Finding[] {
    const facts = snapshot.openFiles;
    if (!facts) return [];
    const verdict = judgeOpenFiles(facts.uses, facts.limit);
    if (!verdict) return [];
    return [
      {
        check: 'open-files',
        severity: verdict.severity,
        subject: `herald start --roles ${facts.roles}`,
        symptom: verdict.symptom,
        cause: verdict.cause,
        fix: verdict.fix,
        evidence: { ...verdict.evidence, roles: facts.roles },
      },
    ];
  },
};
