import type { Herald } from '../main.ts';
import { quarantineSettings } from '../quarantine/settings.ts';
import { createClassifierSource } from './qualification-classifier.ts';
import { createQualificationRecorder } from './qualification-recorder.ts';
import { processInboundMessage, type InboundDeps } from './inbound-processor.ts';
import { startInboundServer, type InboundServer } from './inbound-server.ts';

// The `inbound` role (`herald start --roles inbound`): the bounce SMTP listener with its
// classifier (site rules reloaded), qualification recorder and quarantine updates.

export interface InboundRole {
  name: 'inbound';
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Where it listens, once started. */
  address(): { host: string; port: number } | undefined;
}

export function createInboundRole(herald: Herald): InboundRole {
  const { config, store, clock, logger } = herald;
  const inbound = config.inbound;
  let server: InboundServer | undefined;
  let close: (() => Promise<void>) | undefined;
  return {
    name: 'inbound',
    address: () => server?.address,
    async start() {
      if (server) return;
      const classifiers = createClassifierSource({ siteRulesFile: config.bounce.siteRulesFile, checkMs: config.bounce.reloadCheckMs, logger });
      const recorder = createQualificationRecorder({ store, now: () => clock.now(), flushMs: config.bounce.qualificationFlushMs, logger });
      const deps: InboundDeps = {
        store,
        classifier: () => classifiers.current(),
        recorder,
        settings: quarantineSettings(config),
        verpPrefix: inbound.verpPrefix,
        sampleBytes: inbound.sampleBytes,
        keepSamples: inbound.keepSamples,
      };
      server = await startInboundServer({
        host: inbound.host,
        port: inbound.port,
        policy: { bounceDomain: config.mta.bounceDomain, verpPrefix: inbound.verpPrefix, feedbackAddress: inbound.feedbackAddress },
        maxMessageBytes: inbound.maxMessageBytes,
        maxClients: inbound.maxClients,
        messagesPerMinutePerClient: inbound.messagesPerMinutePerClient,
        keepOfOversized: inbound.sampleBytes,
        clock,
        logger,
        handle: (message) => processInboundMessage(deps, message),
      });
      logger.info({ address: server.address, bounceDomain: config.mta.bounceDomain }, 'inbound SMTP listening');
      const running = server;
      close = async () => {
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
