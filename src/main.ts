import type { Clock } from './common/clock.ts';
import { systemClock } from './common/clock.ts';
import { defaultNodeId } from './common/ids.ts';
import { createLogger, type Logger } from './common/logger.ts';
import { loadConfig, type LoadConfigOptions } from './config/load.ts';
import type { HeraldConfig } from './config/schema.ts';
import { openStore, type Store } from './store/database.ts';
import { migrateToLatest } from './store/migrate.ts';

// Composition root: config → store → roles. Nothing runs at import time anywhere in src/.

export interface Herald {
  config: HeraldConfig;
  store: Store;
  logger: Logger;
  clock: Clock;
  nodeId: string;
  close(): Promise<void>;
}

export interface OpenHeraldOptions extends LoadConfigOptions {
  config?: HeraldConfig;
  logger?: Logger;
  clock?: Clock;
}

/** Loads the configuration, opens the database and applies pending migrations. */
export async function openHerald(options: OpenHeraldOptions = {}): Promise<Herald> {
  const config = options.config ?? loadConfig(options);
  const logger = options.logger ?? createLogger();
  const store = openStore(config.database.url);
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
    close: () => store.close(),
  };
}
