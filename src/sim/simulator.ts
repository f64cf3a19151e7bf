// Starts the simulated Internet of a scenario: one SMTP sink per MX host, a closed port for hosts
// that refuse connections, and the DNS server. DNS cannot carry ports, so every MX host name also
// gets a static route (host name -> 127.0.0.1:port) that the MTA uses to connect.
import { systemClock, type Clock } from '../common/clock.ts';
import { startDnsServer, type DnsServer, type DnsServerStats } from './dns-server.ts';
import { defaultScenario, scenarioDnsRecords, type Scenario } from './scenario.ts';
import type { SinkBehaviour } from './sink-behaviour.ts';
import { sumSinkStats, type SinkStats } from './sink-stats.ts';
import { startSmtpSink, type SmtpSink } from './smtp-sink.ts';

export interface SimulatorOptions {
  /** Default: defaultScenario() with the two options below. */
  scenario?: Scenario;
  clock?: Clock;
  keepMessages?: boolean;
  /** Overrides the limit of every host that has one (ratelimit.test in the default scenario). */
  rateLimitPerMinute?: number;
  /** Overrides the delay of every greylisting host (greylist.test in the default scenario). */
  greylistDelayMs?: number;
  /** Per-address acceptance counts (acceptedCount); default true, turn off for benchmarks. */
  trackRecipients?: boolean;
  /** Offer STARTTLS with the simulator's self-signed certificate; default true. */
  starttls?: boolean;
}

export interface SimulatorRoute {
  /** An MX host name, matched exactly (case-insensitive). */
  match: string;
  host: string;
  port: number;
}

export interface SimulatorStats {
  hosts: Record<string, SinkStats>;
  totals: SinkStats;
  dns: DnsServerStats;
}

export interface Simulator {
  /** '127.0.0.1:PORT', for the MTA's resolverServers. */
  dnsServer: string;
  routes: SimulatorRoute[];
  domains: Array<{ name: string; weight: number; behaviour: string }>;
  /** By MX host name; hosts that refuse connections have no sink. */
  sinks: Map<string, SmtpSink>;
  scenario: Scenario;
  stats(): SimulatorStats;
  /** How many accepted messages named this recipient, across all sinks. */
  acceptedCount(address: string): number;
  close(): Promise<void>;
}

const loopback = '127.0.0.1';

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const scenario =
    options.scenario ??
    defaultScenario({ rateLimitPerMinute: options.rateLimitPerMinute, greylistDelayMs: options.greylistDelayMs });
  const sinks = new Map<string, SmtpSink>();
  const routes: SimulatorRoute[] = [];
  let dns: DnsServer | undefined;
  const closeAll = async () => {
    await Promise.all([...sinks.values()].map((sink) => sink.close()));
    await dns?.close();
  };
  try {
    for (const host of scenario.hosts) {
      const name = host.name.toLowerCase();
      if (host.kind === 'refuse') {
        routes.push({ match: name, host: loopback, port: refusedPort });
        continue;
      }
      const sink = await startSmtpSink({
        hostname: name,
        behaviour: withOverrides(host.behaviour, options),
        clock: options.clock ?? systemClock,
        keepMessages: options.keepMessages,
        trackRecipients: options.trackRecipients,
        tls: options.starttls ?? true,
      });
      sinks.set(name, sink);
      routes.push({ match: name, host: sink.host, port: sink.port });
    }
    dns = await startDnsServer({ records: scenarioDnsRecords(scenario, loopback) });
  } catch (error) {
    await closeAll();
    throw error;
  }
  const dnsServer = dns;
  return {
    dnsServer: dnsServer.address,
    routes,
    domains: scenario.domains.map(({ name, weight, behaviour }) => ({ name, weight, behaviour })),
    sinks,
    scenario,
    stats() {
      const hosts: Record<string, SinkStats> = {};
      for (const [name, sink] of sinks) hosts[name] = sink.stats();
      return { hosts, totals: sumSinkStats(Object.values(hosts)), dns: dnsServer.stats() };
    },
    acceptedCount(address) {
      let count = 0;
      for (const sink of sinks.values()) count += sink.acceptedCount(address);
      return count;
    },
    close: closeAll,
  };
}

function withOverrides(behaviour: SinkBehaviour, options: SimulatorOptions): SinkBehaviour {
  const result = { ...behaviour };
  if (result.rateLimitPerMinute !== undefined && options.rateLimitPerMinute !== undefined) {
    result.rateLimitPerMinute = options.rateLimitPerMinute;
  }
  if (result.greylist && options.greylistDelayMs !== undefined) result.greylist = { delayMs: options.greylistDelayMs };
  return result;
}

/**
 * A port nothing listens on. A free port bound and closed again was handed out again to the next
 * listener of a busy test run (another sink then answered for a host meant to refuse: a flaky
 * failover test); port 1 is privileged, so no unprivileged process (no test, no sink) can take it.
 */
const refusedPort = 1;
