import { join } from 'node:path';
import { randomId } from '../common/ids.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { Herald } from '../main.ts';
import { composeMta } from '../compose-mta.ts';
import type { Mta } from '../mta/queue-runner.ts';
import type { Simulator } from '../sim/simulator.ts';
import { openStore } from '../store/database.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { defaultMidsourcingConfig, type MidsourcingConfig } from './config.ts';
import { startExecutionServer } from './execution-server.ts';
import { getOutbound } from './outbound-store.ts';
import { createPeerClient } from './peer-client.ts';
import { pushDelivery } from './push.ts';
import { syncDeliveryCounters, syncDeliveryLogs } from './sync.ts';

// `herald demo --mid`: the configured database plays the marketing instance; an execution instance
// with its own SQLite database, HTTP server and MTA runs beside it in this process. The prepared
// delivery is pushed over loopback HTTP, sent by the execution instance, and its logs are pulled
// back every second until the marketing side's delivery is finished.

export interface MidDemo {
  /** The execution instance's MTA (for progress figures). */
  mta: Mta;
  executionDatabase: string;
  close(): Promise<void>;
}

export async function startMidDemo(
  herald: Herald,
  deliveryId: number,
  options: {
    dataDir: string;
    simulator: Simulator;
    mtaConfig: HeraldConfig['mta'];
    shapingConfig: HeraldConfig['shaping'];
    onStep(message: string): void;
  },
): Promise<MidDemo> {
  const secret = randomId(24);
  const executionStore = openStore(
    `sqlite:${join(options.dataDir, `herald-execution-${randomId(4).toLowerCase()}.db`)}`,
  );
  await migrateToLatest(executionStore);
  const executionConfig = {
    ...defaultMidsourcingConfig(),
    mode: 'execution',
    name: 'demo-execution',
    peers: [{ name: 'demo-marketing', secret, acceptUnsignedAnswers: false }],
  } satisfies MidsourcingConfig;
  const execution: Herald = {
    ...herald,
    config: { ...herald.config, midsourcing: executionConfig },
    store: executionStore,
    nodeId: `${herald.nodeId}-execution`,
    close: () => executionStore.close(),
  };
  const server = await startExecutionServer({
    store: executionStore,
    config: executionConfig,
    clock: herald.clock,
    logger: herald.logger,
    host: '127.0.0.1',
    port: 0,
  });
  // The execution instance sends as `herald start` does: MX rules, qualification, quarantine, tracking.
  const composed = await composeMta(execution, { mtaConfig: options.mtaConfig, shapingConfig: options.shapingConfig });
  const mta = composed.mta;
  const client = createPeerClient({
    peer: { name: 'demo-execution', url: server.url, secret },
    localName: 'demo-marketing',
    timeoutMs: 30_000,
    clock: herald.clock,
  });
  const marketingConfig = herald.config.midsourcing;
  const retry = {
    maxAttempts: marketingConfig.maxAttempts,
    baseMs: marketingConfig.retryBaseMs,
    maxMs: marketingConfig.retryMaxMs,
  };
  let syncing: Promise<void> = Promise.resolve();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const close = async () => {
    stopped = true;
    clearTimeout(timer);
    await syncing;
    await composed.stop();
    client.close();
    await server.close();
    await executionStore.close();
  };
  try {
    options.onStep(`execution instance: ${server.url}, database ${executionStore.location}`);
    await composed.start();
    const pushed = await pushDelivery({
      store: herald.store,
      client,
      deliveryId,
      partSize: marketingConfig.partSize,
      inFlight: marketingConfig.partsInFlight,
      retry,
      clock: herald.clock,
      logger: herald.logger,
    });
    options.onStep(
      `pushed delivery ${deliveryId} as ${pushed.remoteId}: ${pushed.parts} parts, ${pushed.recipients} recipients, ${pushed.recipientsPerSec} recipients/s`,
    );
    const pull = async () => {
      const outbound = await getOutbound(herald.store, deliveryId);
      if (!outbound || outbound.logs_complete === 1) return;
      await syncDeliveryLogs(herald.store, client, outbound, {
        pageSize: marketingConfig.logsPageSize,
        retry,
        clock: herald.clock,
      });
      await syncDeliveryCounters(herald.store, client, (await getOutbound(herald.store, deliveryId))!, {
        retry,
        clock: herald.clock,
      });
    };
    const schedule = () => {
      timer = setTimeout(() => {
        syncing = pull()
          .catch((error: unknown) => herald.logger.warn({ err: String(error) }, 'demo: pulling logs failed; retrying'))
          .finally(() => {
            if (!stopped) schedule();
          });
      }, 1_000);
    };
    schedule();
  } catch (error) {
    await close();
    throw error;
  }
  return { mta, executionDatabase: executionStore.location, close };
}
