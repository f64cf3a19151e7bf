import type { Clock } from './common/clock.ts';
import { systemClock } from './common/clock.ts';
import { defaultNodeId } from './common/ids.ts';
import { createLogger, type LogFormat, type Logger } from './common/logger.ts';
import { loadConfig, type LoadConfigOptions } from './config/load.ts';
import { defaultDatabaseUrl, type HeraldConfig } from './config/schema.ts';
import { openStore, type Store } from './store/database.ts';
import { migrateToLatest } from './store/migrate.ts';
import { createHeraldMetrics, type HeraldMetrics } from './metrics/registry.ts';

// Composition root: config → store → roles. Nothing runs at import time anywhere in src/.

export interface Herald {
  config: HeraldConfig;
  store: Store;
  logger: Logger;
  clock: Clock;
  nodeId: string;
  /** This process's Prometheus registry (served at /metrics by the api role or the metrics port). */
  metrics: HeraldMetrics;
  close(): Promise<void>;
}

export interface OpenHeraldOptions extends LoadConfigOptions {
  config?: HeraldConfig;
  /**
   * Create the SQLite database when it does not exist (default true). The CLI passes false for every
   * command that only reads or changes existing data: DATABASE_NOT_FOUND naming the path instead.
   */
  create?: boolean;
  logger?: Logger;
  /** How logs are written when no logger is given (default auto: human on a terminal, JSON otherwise). */
  logFormat?: LogFormat;
  clock?: Clock;
}

/** Loads the configuration, opens the database and applies pending migrations. */
export async function openHerald(options: OpenHeraldOptions = {}): Promise<Herald> {
  const config = options.config ?? loadConfig(options);
  const logger = options.logger ?? createLogger({ format: options.logFormat ?? 'auto' });
  // The default's ./data folder is created; a folder named in the configuration must exist.
  const store = openStore(config.database.url, {
    create: options.create ?? true,
    createDirectory: config.database.url === defaultDatabaseUrl,
    connectTimeoutMs: config.database.connectTimeoutMs,
    timeouts: { lockTimeoutMs: config.database.lockTimeoutMs, statementTimeoutMs: config.database.statementTimeoutMs },
  });
  try {
    await migrateToLatest(store);
  } catch (error) {
    await store.close();
    throw error;
  }
  return {
    config,
    store,
    logger,
    clock: options.clock ?? systemClock,
    nodeId: config.nodeId ?? defaultNodeId(),
    metrics: createHeraldMetrics(),
    close: () => store.close(),
  };
}
