import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { maxPartsInFlight } from '../src/midsourcing/config.ts';
import { createPeerClient, type PeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import type { Fault } from '../src/midsourcing/testing/fault-proxy.ts';
import { seedNumberedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { openMidLoopbackPair, type MidLoopbackPair } from './support/mid-loopback-pair.ts';

// midsourcing.partsInFlight parts (up to 32) are on the wire at once: none of them waits for a
// connection on the marketing side while its request timeout runs (it would time out without ever
// being sent, and `herald mid status` would blame the network).

describe('parts in flight', () => {
  const clock = manualClock(Date.UTC(2026, 5, 1, 9));
  const inFlight = maxPartsInFlight;
  let pair: MidLoopbackPair;
  let client: PeerClient;
  beforeAll(async () => {
    pair = await openMidLoopbackPair(['sqlite', 'sqlite'], clock);
    client = createPeerClient({
      peer: { name: 'exec-1', url: pair.proxy.url, secret: pair.marketingConfig.peers[0]!.secret },
      localName: 'marketing-1',
      timeoutMs: 3_000,
      clock,
    });
  });
  afterAll(async () => {
    client?.close();
    await pair?.close();
  });

  it(`sends ${inFlight} parts at once when partsInFlight is ${inFlight}`, async () => {
    const { deliveryId } = await seedNumberedDelivery(pair.marketing.store, 'wide', inFlight * 2, clock);
    // The execution side answers no part until every part in flight has reached it: a slow append
    // that the marketing side should wait out in parallel, not queue behind 8 connections.
    let arrived = 0;
    let release = () => {};
    const everyPart = new Promise<void>((resolve) => {
      release = resolve;
    });
    pair.proxy.setPlan(({ path, attempt }): Fault => {
      if (!/\/parts\/\d+$/.test(path)) return { kind: 'pass' };
      if (attempt > 1 || ++arrived >= inFlight) release();
      return { kind: 'hold', until: everyPart };
    });
    const result = await pushDelivery({
      store: pair.marketing.store,
      client,
      deliveryId,
      partSize: 2,
      inFlight,
      retry: { maxAttempts: 5, baseMs: 1, maxMs: 2 },
      clock,
    });
    expect(result).toMatchObject({ parts: inFlight, recipients: inFlight * 2, remoteState: 'in_progress' });
    expect({ timeouts: result.timeouts, attempts: result.attempts }).toEqual({ timeouts: 0, attempts: inFlight });
  });
});
