import { Counter, Histogram, Registry } from 'prom-client';
import type { InboundRefusal } from '../bounce/inbound-server.ts';
import type { Outcome } from '../mta/outcome.ts';
import type { MtaTimings } from '../mta/timings.ts';
import type { ConnectionRefusal } from '../common/connection-guard.ts';
import { domainClass, reasonLabel } from './labels.ts';

// One Prometheus registry per process (never prom-client's global one): what this process counts as
// it works (the MTA's outcomes and timings, tracking events, mid-sourcing parts), plus the platform
// gauges read from the database at scrape time (platform-collector.ts). Labels are bounded:
// provider classes, reasons, kinds and outcomes, never an address, a host or a delivery.

export type PartOutcome = 'ok' | 'timeout' | 'error';
export type HttpServerName = 'api' | 'tracking' | 'mid' | 'metrics';

export interface HeraldMetrics {
  registry: Registry;
  /** The MTA's committed outcomes of one batch. */
  observeOutcomes(outcomes: readonly Outcome[]): void;
  /** SMTP session, transaction and DKIM signing durations of this process's MTA. */
  mtaTimings: MtaTimings;
  /** A raw tracking event recorded by this process's tracking server (open, click, mirror, unsubscribe). */
  countTrackingEvent(kind: string): void;
  /** A client the inbound SMTP role refused by one of its limits (a 421 or 452). */
  countInboundRefusal(reason: InboundRefusal): void;
  /** A connection an HTTP server closed as it came, over its maxConnections or maxConnectionsPerClient. */
  countRefusedConnection(server: HttpServerName, reason: ConnectionRefusal): void;
  /** One mid-sourcing part append: `marketing` = this process pushed it, `execution` = it received it. */
  observePartAppend(side: 'marketing' | 'execution', seconds: number, outcome: PartOutcome): void;
}

// SMTP exchanges over the Internet: from a few ms (loopback) to the 5-minute data timeout.
const smtpBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
// One RSA-2048 signature is ~1 ms; Ed25519 far less; a busy worker pool adds waiting.
const dkimBuckets = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];
const partBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createHeraldMetrics(): HeraldMetrics {
  const registry = new Registry();
  const messages = new Counter({
    name: 'herald_messages_total',
    help: 'SMTP attempts by outcome (sent, deferred, failed), failure reason and provider class of the MX host',
    labelNames: ['outcome', 'reason', 'domain_class'] as const,
    registers: [registry],
  });
  const sessions = new Histogram({
    name: 'herald_smtp_session_seconds',
    help: 'opening an SMTP session (connect, greeting, EHLO, STARTTLS) by provider class of the MX host and result',
    labelNames: ['domain_class', 'result'] as const,
    buckets: smtpBuckets,
    registers: [registry],
  });
  const transactions = new Histogram({
    name: 'herald_smtp_transaction_seconds',
    help: 'one SMTP transaction (MAIL FROM to the reply after the final dot) by provider class of the MX host',
    labelNames: ['domain_class'] as const,
    buckets: smtpBuckets,
    registers: [registry],
  });
  const dkim = new Histogram({
    name: 'herald_dkim_signing_seconds',
    help: "computing one message's DKIM signatures (with signing workers, including the wait for one)",
    buckets: dkimBuckets,
    registers: [registry],
  });
  const trackingEvents = new Counter({
    name: 'herald_tracking_events_total',
    help: 'raw tracking events recorded by this process, by kind (open, click, mirror, unsubscribe)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const inboundRefusals = new Counter({
    name: 'herald_inbound_refusals_total',
    help: 'clients the inbound SMTP role refused by a limit (421 or 452), by limit',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const refusedConnections = new Counter({
    name: 'herald_http_connections_refused_total',
    help: 'connections an HTTP server closed as they came: server_full (its maxConnections) or client_full (maxConnectionsPerClient)',
    labelNames: ['server', 'reason'] as const,
    registers: [registry],
  });
  const partAppends = new Histogram({
    name: 'herald_mid_part_append_seconds',
    help: 'mid-sourcing part appends: pushed (side marketing, the whole HTTP exchange) or received (side execution, decoding and storing)',
    labelNames: ['side', 'outcome'] as const,
    buckets: partBuckets,
    registers: [registry],
  });
  const partTimeouts = new Counter({
    name: 'herald_mid_part_timeouts_total',
    help: 'mid-sourcing part appends that got no answer within midsourcing.requestTimeoutMs (marketing side)',
    labelNames: ['side'] as const,
    registers: [registry],
  });

  // domainClass tests a dozen patterns: remember each MX host's class (a bounded set of hosts).
  const classes = new Map<string, string>();
  const classOf = (host: string | null | undefined) => {
    if (!host) return 'other';
    let known = classes.get(host);
    if (known === undefined) {
      if (classes.size >= 10_000) classes.clear();
      known = domainClass(host);
      classes.set(host, known);
    }
    return known;
  };
  const trackingKinds = new Set(['open', 'click', 'mirror', 'unsubscribe']);

  return {
    registry,
    observeOutcomes(outcomes) {
      for (const outcome of outcomes) {
        if (outcome.kind === 'released') continue;
        const reason =
          outcome.kind === 'sent'
            ? 'none'
            : outcome.kind === 'failed' && outcome.expired
              ? 'expired'
              : reasonLabel(outcome.verdict.reason);
        messages.inc({ outcome: outcome.kind, reason, domain_class: classOf(outcome.mxHost) });
      }
    },
    mtaTimings: {
      smtpSession(mxHost, seconds, opened) {
        sessions.observe({ domain_class: classOf(mxHost), result: opened ? 'open' : 'failed' }, seconds);
      },
      smtpTransaction(mxHost, seconds) {
        transactions.observe({ domain_class: classOf(mxHost) }, seconds);
      },
      dkimSigning(seconds) {
        dkim.observe(seconds);
      },
    },
    countTrackingEvent(kind) {
      trackingEvents.inc({ kind: trackingKinds.has(kind) ? kind : 'other' });
    },
    countInboundRefusal(reason) {
      inboundRefusals.inc({ reason });
    },
    countRefusedConnection(server, reason) {
      refusedConnections.inc({ server, reason });
    },
    observePartAppend(side, seconds, outcome) {
      partAppends.observe({ side, outcome }, seconds);
      if (outcome === 'timeout') partTimeouts.inc({ side });
    },
  };
}
