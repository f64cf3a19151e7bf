import type { Herald } from '../main.ts';
import { inTransaction } from '../store/database.ts';
import { quarantineSettings } from '../quarantine/settings.ts';
import { countInbound } from './qualification-store.ts';
import { loadKeyRing } from '../tracking/keys.ts';
import {
  applyMailUnsubscribeWithin,
  createMailUnsubscribeVerifier,
  type MailUnsubscribeOutcome,
  type MailUnsubscribeWrite,
} from '../tracking/mail-unsubscribe.ts';
import { createClassifierSource } from './qualification-classifier.ts';
import { createQualificationRecorder } from './qualification-recorder.ts';
import { processInboundMessage, type InboundDeps } from './inbound-processor.ts';
import { startInboundServer, type InboundServer } from './inbound-server.ts';
import { loadInboundCertificate, watchInboundCertificate } from './inbound-tls.ts';
import { loadVerpSigner } from './verp-keys.ts';

// The `inbound` role (`herald start --roles inbound`): the bounce SMTP listener with its
// classifier (site rules reloaded), qualification recorder and quarantine updates.

export interface InboundRole {
  name: 'inbound';
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Where it listens, once started. */
  address(): { host: string; port: number } | undefined;
}

export interface InboundRoleOptions {
  /** Test seam: see InboundDeps.afterWrite. */
  afterWrite?: InboundDeps['afterWrite'];
  /** Test seam: called after each write of a mailto: unsubscribe; a throw there is a failed write. */
  afterUnsubscribeWrite?: (write: MailUnsubscribeWrite) => void | Promise<void>;
  /** How often the inbound.tls files are checked for a renewal (default 60 s). */
  certificateCheckMs?: number;
}

/** The inbound counter each mailto: unsubscribe outcome increments (a replay is a `duplicate`). */
const unsubscribeCounter: Record<MailUnsubscribeOutcome['kind'], string> = {
  unsubscribed: 'unsubscribe',
  already_unsubscribed: 'duplicate',
  unknown_log: 'unknown_log',
};

export function createInboundRole(herald: Herald, options: InboundRoleOptions = {}): InboundRole {
  const { config, store, clock, logger } = herald;
  const inbound = config.inbound;
  let server: InboundServer | undefined;
  let close: (() => Promise<void>) | undefined;
  return {
    name: 'inbound',
    address: () => server?.address,
    async start() {
      if (server) return;
      // Checked before anything starts: a wrong path or a key of another certificate stops the role.
      const certificate = inbound.tls ? loadInboundCertificate(inbound.tls) : undefined;
      const classifiers = await createClassifierSource({
        siteRulesFile: config.bounce.siteRulesFile,
        checkMs: config.bounce.reloadCheckMs,
        logger,
      });
      const recorder = createQualificationRecorder({
        store,
        now: () => clock.now(),
        flushMs: config.bounce.qualificationFlushMs,
        logger,
      });
      const verp = await loadVerpSigner(store, config, clock.now());
      const deps: InboundDeps = {
        store,
        classifier: () => classifiers.current(),
        recorder,
        settings: quarantineSettings(config),
        verpPrefix: inbound.verpPrefix,
        verp,
        sampleBytes: inbound.sampleBytes,
        keepSamples: inbound.keepSamples,
        afterWrite: options.afterWrite,
      };
      // RFC 8058 mailto: unsubscribe, only when messages advertise it (tracking.unsubscribeMailDomain).
      const unsubscribeDomain = config.tracking.unsubscribeMailDomain.trim();
      const unsubscribe = unsubscribeDomain
        ? createMailUnsubscribeVerifier(await loadKeyRing(store, config.tracking, clock.now()), unsubscribeDomain)
        : undefined;
      server = await startInboundServer({
        host: inbound.host,
        port: inbound.port,
        policy: {
          bounceDomain: config.mta.bounceDomain,
          verpPrefix: inbound.verpPrefix,
          verp,
          feedbackAddress: inbound.feedbackAddress,
          unsubscribe,
        },
        maxMessageBytes: inbound.maxMessageBytes,
        maxBufferedBytes: inbound.maxBufferedBytes,
        maxClients: inbound.maxClients,
        maxConnectionsPerClient: inbound.maxConnectionsPerClient,
        sessionTimeoutMs: inbound.sessionTimeoutSeconds * 1_000,
        maxCommandsWithoutMessage: inbound.maxCommandsWithoutMessage,
        messagesPerMinutePerClient: inbound.messagesPerMinutePerClient,
        maxTrackedClients: inbound.maxTrackedClients,
        ipv6ClientPrefixLength: inbound.ipv6ClientPrefixLength,
        keepOfOversized: inbound.sampleBytes,
        clock,
        logger,
        onRefusal: (reason) => herald.metrics.countInboundRefusal(reason),
        tls: certificate && inbound.tls ? { ...certificate, minVersion: inbound.tls.minVersion } : undefined,
        handle: (message) => processInboundMessage(deps, message),
        // One transaction per received message: its unsubscribes, their raw events and the counters
        // commit together, so a failure answers 451 with nothing applied and the client's retry
        // applies everything once.
        unsubscribe: (targets, receivedAt) =>
          inTransaction(store, async (trx) => {
            const outcomes = ['received'];
            for (const target of targets) {
              const outcome = await applyMailUnsubscribeWithin(
                trx,
                deps.settings,
                target,
                receivedAt,
                options.afterUnsubscribeWrite,
              );
              outcomes.push(unsubscribeCounter[outcome.kind]);
            }
            await countInbound(trx, outcomes, receivedAt);
          }),
      });
      logger.info(
        {
          address: server.address,
          bounceDomain: config.mta.bounceDomain,
          unsubscribeDomain: unsubscribeDomain || null,
          starttls: certificate ? { subject: certificate.subject, validTo: certificate.validTo } : null,
        },
        'inbound SMTP listening',
      );
      const running = server;
      const stopWatching = inbound.tls
        ? watchInboundCertificate({
            files: inbound.tls,
            checkMs: options.certificateCheckMs ?? 60_000,
            apply: (renewed) => running.updateCertificate(renewed),
            logger,
          })
        : () => {};
      close = async () => {
        stopWatching();
        await running.close();
        await recorder.close();
        classifiers.close();
      };
    },
    async stop() {
      await close?.();
      server = undefined;
      close = undefined;
    },
  };
}
