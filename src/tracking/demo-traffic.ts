import type { Herald } from '../main.ts';
import { consolidateDelivery } from './consolidation-run.ts';
import { createTrackingService } from './service.ts';
import { deliveryTrackingStats, type DeliveryTrackingStats } from './stats.ts';
import { sentLogs, trackingLinks } from './tracking-store.ts';

// `herald demo`: readers open, click and unsubscribe through the real tracking routes (in-process,
// no port), then the delivery is consolidated, so the summary shows indicators. Deterministic: the
// n-th sent recipient always behaves the same way.

const browser =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36';
const applePrivacyProxy = 'Mozilla/5.0';
const scanner = 'Mozilla/5.0 (compatible; Mimecast URL Protect)';

export async function simulateTrackingTraffic(herald: Herald, deliveryId: number): Promise<DeliveryTrackingStats> {
  const service = await createTrackingService(herald);
  try {
    const logs = await sentLogs(herald.store, deliveryId, 2_000);
    const links = await trackingLinks(herald.store, deliveryId);
    // The demo compresses time: tokens are dated an hour before the reads, as if people read later.
    const issuedAt = (sentAt: number | null) => Math.floor((sentAt ?? herald.clock.now()) / 1_000) - 3_600;
    let unsubscribed = false;
    for (const [n, log] of logs.entries()) {
      const claims = {
        deliveryId,
        logId: log.id,
        issuedAt: issuedAt(log.sentAt),
      };
      const inject = (url: string, agent: string, method: 'GET' | 'POST' = 'GET') =>
        service.app.inject({
          method,
          url,
          headers: {
            'user-agent': agent,
            ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
          },
          payload: method === 'POST' ? 'List-Unsubscribe=One-Click' : undefined,
        });
      if (n % 10 < 4)
        await inject(
          `/o/${service.keyRing.sign({ kind: 'open', ...claims })}`,
          n % 10 === 3 ? applePrivacyProxy : browser,
        );
      if (links.length > 0 && n % 10 < 2) {
        const linkIndex = n % links.length;
        await inject(`/r/${service.keyRing.sign({ kind: 'click', ...claims, linkIndex, occurrence: n % 3 })}`, browser);
      }
      if (links.length > 0 && n % 25 === 7)
        await inject(`/r/${service.keyRing.sign({ kind: 'click', ...claims, linkIndex: 0, occurrence: 0 })}`, scanner);
      if (n % 50 === 5) await inject(`/m/${service.keyRing.sign({ kind: 'mirror', ...claims })}`, browser);
      if (!unsubscribed && n === 11) {
        await inject(`/u/${service.keyRing.sign({ kind: 'unsubscribe', ...claims })}`, browser, 'POST');
        unsubscribed = true;
      }
    }
  } finally {
    await service.close();
  }
  await consolidateDelivery(
    herald.store,
    deliveryId,
    herald.config.tracking.openDedupSeconds * 1_000,
    herald.clock.now(),
  );
  return deliveryTrackingStats(herald.store, deliveryId);
}
