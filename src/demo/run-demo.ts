import { join } from 'node:path';
import { createAddressPredicate } from '../audience/address.ts';
import { importRecipients } from '../audience/csv-import.ts';
import type { HeraldConfig } from '../config/schema.ts';
import { startDelivery } from '../delivery/lifecycle.ts';
import { preparationStore, prepareDelivery } from '../delivery/preparation.ts';
import { summarizeDelivery, type DeliverySummary } from '../delivery/summary.ts';
import type { Herald } from '../main.ts';
import { startMidDemo, type MidDemo } from '../midsourcing/demo.ts';
import type { Mta } from '../mta/queue-runner.ts';
import { composeMta, type ComposedMta } from '../compose-mta.ts';
import { demoShapingConfig, observeBindings, type BoundRule } from '../shaping/demo-rules.ts';
import { startSimulator, type Simulator } from '../sim/simulator.ts';
import { createDelivery, getDelivery, nthSentAt } from '../delivery/delivery-store.ts';
import { demoContent, writeDemoCsv } from './demo-audience.ts';
import { simulateTrackingTraffic } from '../tracking/demo-traffic.ts';
import type { DeliveryTrackingStats } from '../tracking/stats.ts';

// `herald demo`: import → create → prepare → send against the ISP simulator, on the configured
// database (./data/herald.db by default). Retry delays and validity are scaled to seconds so that every
// recipient ends sent, failed or excluded within a minute.

export interface DemoOptions {
  recipients: number;
  dataDir: string;
  /** Seconds until the delivery's validity ends (then what is still deferred fails as expired). */
  validitySeconds: number;
  onStep?(message: string): void;
  onProgress?(progress: DemoProgress): void;
  progressIntervalMs?: number;
  /** Mid-sourcing: push the delivery to an execution instance (own database, HTTP server, MTA) and pull its logs back. */
  mid?: boolean;
}

export interface DemoProgress {
  sent: number;
  failed: number;
  pending: number;
  msgsPerSec: number;
  elapsedMs: number;
}

export interface DemoResult extends DeliverySummary {
  elapsedMs: number;
  msgsPerSec: number;
  importRejected: number;
  /** Indicators after simulated opens, clicks and an unsubscribe (through the real tracking routes). */
  tracking: DeliveryTrackingStats;
  /** MX rules that held traffic back during the run (the demo's own pack, rules/ for the simulator), most often first. */
  shaping: { rulesVersion: string | null; bound: BoundRule[] };
}

export interface DemoRun {
  result: DemoResult;
  /** Still running (for --keep-running): stop them with close(). */
  simulator: Simulator;
  mta: Mta;
  close(): Promise<void>;
}

/** The MTA settings of the demo: the simulator's DNS and routes, retry delays in seconds. */
export function demoMtaConfig(base: HeraldConfig['mta'], simulator: Simulator): HeraldConfig['mta'] {
  return {
    ...base,
    routes: simulator.routes.map((route) => ({ match: route.match, host: route.host, port: route.port })),
    resolverServers: [simulator.dnsServer],
    retryDelaysSeconds: [1, 2, 3],
    connectTimeoutMs: 1_500,
    commandTimeoutMs: 3_000,
    dataTimeoutMs: 5_000,
    pollIntervalMs: 200,
  };
}

export async function runDemo(herald: Herald, options: DemoOptions): Promise<DemoRun> {
  const step = options.onStep ?? (() => {});
  const simulator = await startSimulator({ rateLimitPerMinute: 200, greylistDelayMs: 0, trackRecipients: false });
  let mta: Mta | undefined;
  let composed: ComposedMta | undefined;
  let midDemo: MidDemo | undefined;
  try {
    const listName = `demo-${new Date(herald.clock.now()).toISOString().replace(/[:.]/g, '-')}`;
    const csv = join(options.dataDir, `${listName}.csv`);
    step(`simulator: ${simulator.domains.length} domains, DNS on ${simulator.dnsServer}`);
    await writeDemoCsv(csv, options.recipients, simulator.scenario);
    const imported = await importRecipients({
      store: herald.store,
      file: csv,
      list: listName,
      maxFileBytes: herald.config.import.maxFileBytes,
      maxRecordBytes: herald.config.import.maxRecordBytes,
      clock: herald.clock,
    });
    step(`imported ${imported.imported} recipients into list ${listName} (${imported.rejected} rejected)`);

    const delivery = await createDelivery(
      herald.store,
      {
        name: `Demo ${listName}`,
        fromAddress: 'news@herald.test',
        fromName: 'Herald Demo',
        replyTo: null,
        subject: demoContent.subject,
        html: demoContent.html,
        text: demoContent.text,
        listName,
        validityHours: options.validitySeconds / 3600,
        affinity: null,
        scheduledAt: null,
      },
      { validityHours: herald.config.delivery.validityHours },
      herald.clock.now(),
    );
    const prepared = await prepareDelivery(
      preparationStore(herald.store, { foldLocalPartCase: herald.config.delivery.foldLocalPartCase }),
      delivery.id,
      {
        batchSize: herald.config.delivery.preparationBatchSize,
        clock: herald.clock,
        isValidAddress: createAddressPredicate(),
      },
    );
    if (prepared.kind === 'failed') throw new Error(`demo delivery preparation failed: ${prepared.error}`);
    step(`prepared delivery ${delivery.id}: ${prepared.counts.prepared} delivery logs`);

    const started = herald.clock.now();
    if (options.mid) {
      midDemo = await startMidDemo(herald, delivery.id, {
        dataDir: options.dataDir,
        simulator,
        mtaConfig: demoMtaConfig(herald.config.mta, simulator),
        shapingConfig: demoShapingConfig(herald.config.shaping, options.dataDir),
        onStep: step,
      });
      mta = midDemo.mta;
    } else {
      await startDelivery(herald.store, delivery.id, started);
      // Assembled exactly as `herald start` does: qualification, quarantine, tracking.
      composed = await composeMta(herald, {
        nodeId: `${herald.nodeId}-demo`,
        mtaConfig: demoMtaConfig(herald.config.mta, simulator),
        shapingConfig: demoShapingConfig(herald.config.shaping, options.dataDir),
      });
      mta = composed.mta;
      await composed.start();
    }
    const bindings = composed ? observeBindings(composed.shaping.shaper) : undefined;
    step(`sending delivery ${delivery.id} with ${options.mid ? "the execution instance's" : "Herald's"} MTA`);
    await waitForEnd(herald, delivery.id, mta, started, options);
    const elapsedMs = herald.clock.now() - started;
    const bound = (await bindings?.stop()) ?? [];
    const tracking = await simulateTrackingTraffic(herald, delivery.id);
    const summary = await summarizeDelivery(herald.store, delivery.id);
    const result: DemoResult = {
      tracking,
      ...summary,
      elapsedMs,
      msgsPerSec: await sendingRate(herald, delivery.id, summary.sent, started),
      importRejected: imported.rejected,
      shaping: { rulesVersion: composed ? composed.shaping.rules.current().version : null, bound },
    };
    const running = mta;
    const own = composed;
    const execution = midDemo;
    return {
      result,
      simulator,
      mta: running,
      close: async () => {
        if (own) await own.stop();
        else await running.stop();
        await execution?.close();
        await simulator.close();
      },
    };
  } catch (error) {
    if (composed) await composed.stop();
    else await mta?.stop();
    await midDemo?.close();
    await simulator.close();
    throw error;
  }
}

/**
 * Messages per second while the bulk went out: the first 95 % of the accepted messages over the time
 * they took. The tail (greylisting retries, a rate-limited host trickling) would otherwise dilute it.
 */
async function sendingRate(herald: Herald, deliveryId: number, sent: number, started: number): Promise<number> {
  const bulk = Math.ceil(sent * 0.95);
  if (bulk === 0) return 0;
  const at = (await nthSentAt(herald.store, deliveryId, bulk - 1)) ?? started;
  return Math.round((bulk / Math.max(at - started, 1)) * 1000);
}

async function waitForEnd(
  herald: Herald,
  deliveryId: number,
  mta: Mta,
  started: number,
  options: DemoOptions,
): Promise<void> {
  const interval = options.progressIntervalMs ?? 500;
  for (;;) {
    const delivery = await getDelivery(herald.store, deliveryId);
    const summary = await summarizeDelivery(herald.store, deliveryId);
    options.onProgress?.({
      sent: summary.sent,
      failed: summary.failed + summary.ignored,
      pending: summary.pending,
      msgsPerSec: Math.round(mta.stats().msgsPerSec),
      elapsedMs: herald.clock.now() - started,
    });
    if (delivery.state !== 'in_progress') return;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
