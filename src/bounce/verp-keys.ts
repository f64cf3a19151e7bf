import type { HeraldConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';
import { trackingKeys } from '../tracking/keys.ts';
import { createVerpSigner, type VerpSigner } from './verp.ts';

// VERP addresses are signed with keys derived from the tracking keys (configured, or the one
// generated into the database), so they rotate together: one secret to manage, one grace period
// (tracking.keyGraceDays) during which bounces of messages signed by an older key still verify.

const day = 86_400_000;

export async function loadVerpSigner(store: Store, config: HeraldConfig, now: number): Promise<VerpSigner> {
  return createVerpSigner({
    keys: await trackingKeys(store, config.tracking, now),
    graceMs: config.tracking.keyGraceDays * day,
    localPrefix: config.inbound.verpPrefix,
  });
}
