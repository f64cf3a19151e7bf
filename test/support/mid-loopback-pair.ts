import { afterAll, beforeAll } from 'vitest';
import type { Clock } from '../../src/common/clock.ts';
import { configSchema } from '../../src/config/schema.ts';
import { defaultMidsourcingConfig, type MidsourcingConfig } from '../../src/midsourcing/config.ts';
import {
  startExecutionServer,
  type ExecutionServer,
  type ExecutionServerOptions,
} from '../../src/midsourcing/execution-server.ts';
import { createPeerClient, type PeerClient } from '../../src/midsourcing/peer-client.ts';
import { startFaultProxy, type FaultProxy } from '../../src/midsourcing/testing/fault-proxy.ts';
import { createMta, type Mta } from '../../src/mta/queue-runner.ts';
import type { Simulator } from '../../src/sim/simulator.ts';
import type { Dialect, Store } from '../../src/store/database.ts';
import { createMtaStore } from '../../src/mta/queue-store.ts';
import { openMigratedDatabase, type TestDatabase } from './databases.ts';

// Two real Herald instances for the mid-sourcing loopback tests: a marketing one and an execution one,
// each with its own fresh database, the execution server behind a fault-injecting proxy, a signed
// peer client from marketing through the proxy, and (on demand) the execution side's MTA sending to
// the ISP simulator.

export interface MidLoopbackPair {
  marketing: { store: Store; database: TestDatabase };
  execution: { store: Store; database: TestDatabase };
  executionConfig: MidsourcingConfig;
  /** The marketing side's configuration: one peer, exec-1, reached through the proxy. */
  marketingConfig: MidsourcingConfig;
  proxy: FaultProxy;
  client: PeerClient;
  /** The execution server now running (restartExecutionServer replaces it). */
  server(): ExecutionServer;
  /** Closes the execution server and starts it again on the same port and database. */
  restartExecutionServer(): Promise<void>;
  /** The execution side's MTA, sending to the simulator with short timeouts and a 1 s retry. */
  executionMta(simulator: Simulator, nodeId: string): Mta;
  /** Stops what was started here and drops both databases. */
  close(): Promise<void>;
}

const secret = 'loopback-shared-secret-0123456789';

export async function openMidLoopbackPair(
  [marketingDialect, executionDialect]: [Dialect, Dialect],
  clock: Clock,
  options: { onPartAppend?: ExecutionServerOptions['onPartAppend'] } = {},
): Promise<MidLoopbackPair> {
  const marketing = await openMigratedDatabase(marketingDialect);
  const execution = await openMigratedDatabase(executionDialect);
  const executionConfig: MidsourcingConfig = {
    ...defaultMidsourcingConfig(),
    mode: 'execution',
    name: 'exec-1',
    peers: [{ name: 'marketing-1', secret }],
  };
  let server = await startExecutionServer({
    store: execution.store,
    config: executionConfig,
    clock,
    host: '127.0.0.1',
    port: 0,
    ...(options.onPartAppend && { onPartAppend: options.onPartAppend }),
  });
  const proxy = await startFaultProxy(server.url);
  const marketingConfig: MidsourcingConfig = {
    ...defaultMidsourcingConfig(),
    mode: 'marketing',
    name: 'marketing-1',
    peers: [{ name: 'exec-1', url: proxy.url, secret }],
    requestTimeoutMs: 1_000,
    retryBaseMs: 20,
    retryMaxMs: 200,
  };
  const client = createPeerClient({
    peer: { name: 'exec-1', url: proxy.url, secret },
    localName: 'marketing-1',
    timeoutMs: 1_000,
    clock,
  });
  const mtas: Mta[] = [];
  return {
    marketing,
    execution,
    executionConfig,
    marketingConfig,
    proxy,
    client,
    server: () => server,
    async restartExecutionServer() {
      await server.close();
      server = await startExecutionServer({
        store: execution.store,
        config: executionConfig,
        clock,
        host: '127.0.0.1',
        port: server.port,
        ...(options.onPartAppend && { onPartAppend: options.onPartAppend }),
      });
    },
    executionMta(simulator, nodeId) {
      const mta = createMta({
        store: createMtaStore(execution.store),
        nodeId,
        clock,
        config: configSchema.parse({
          mta: {
            routes: simulator.routes,
            resolverServers: [simulator.dnsServer],
            retryDelaysSeconds: [1],
            pollIntervalMs: 50,
            connectTimeoutMs: 500,
            commandTimeoutMs: 1_000,
            dataTimeoutMs: 1_000,
          },
        }).mta,
      });
      mtas.push(mta);
      return mta;
    },
    async close() {
      for (const mta of mtas) await mta.stop();
      client.close();
      await proxy.close();
      await server.close();
      await marketing.store.close();
      await execution.store.close();
      await marketing.database.drop();
      await execution.database.drop();
    },
  };
}

/**
 * A pair opened before the tests of the enclosing describe block (or file) and closed after them;
 * the getter returns it inside a test.
 */
export function sharedMidLoopbackPair(dialects: [Dialect, Dialect], clock: Clock): () => MidLoopbackPair {
  let pair: MidLoopbackPair | undefined;
  beforeAll(async () => {
    pair = await openMidLoopbackPair(dialects, clock);
  });
  afterAll(async () => {
    await pair?.close();
  });
  return () => {
    if (!pair) throw new Error('the mid-sourcing pair is not open');
    return pair;
  };
}
