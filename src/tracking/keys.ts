import { randomBytes } from 'node:crypto';
import type { TrackingConfig } from './config-schema.ts';
import type { Store } from '../store/database.ts';
import { insertTrackingKey, storedTrackingKeys } from './tracking-store.ts';
import { createKeyRing, type KeyRing, type TrackingKey } from './token.ts';

// The key ring from configuration, or — when none is configured — from the database, where one
// key is generated at first use so a fresh install (and the demo) tracks with no setup. Every node
// of a cluster reads the same row, and the fixed id makes concurrent first starts keep one key.

const day = 86_400_000;
const generatedKeyId = 'default';

export async function loadKeyRing(store: Store, config: TrackingConfig, now: number): Promise<KeyRing> {
  return createKeyRing({
    keys: await trackingKeys(store, config, now),
    graceMs: config.keyGraceDays * day,
    ttlMs: config.tokenTtlDays * day,
  });
}

export async function trackingKeys(store: Store, config: TrackingConfig, now: number): Promise<TrackingKey[]> {
  if (config.keys.length > 0)
    return config.keys.map((key) => ({ id: key.id, secret: key.secret, createdAt: Date.parse(key.createdAt) }));
  let stored = await storedTrackingKeys(store);
  if (stored.length === 0) {
    await insertTrackingKey(store, {
      id: generatedKeyId,
      secret: randomBytes(32).toString('base64url'),
      createdAt: now,
    });
    stored = await storedTrackingKeys(store);
  }
  return stored;
}

/** The public base URL of the tracking server: configured, or derived from its listen address. */
export function trackingBaseUrl(config: TrackingConfig): string {
  if (config.baseUrl) return config.baseUrl.replace(/\/+$/, '');
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${config.port}`;
}
