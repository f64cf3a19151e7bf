import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { Store } from '../store/database.ts';
import type { QuarantineSettings } from './types.ts';
import { sweepAddresses } from './address-events.ts';

// Runs the quarantine sweep (mailbox_full releases, counter resets) at start and then every
// `intervalMs`. Several nodes sweeping at once is harmless: the decisions are idempotent.

export interface QuarantineSweeper {
  start(): void;
  stop(): Promise<void>;
  runOnce(): Promise<number>;
}

export function createQuarantineSweeper(options: {
  store: Store;
  settings: QuarantineSettings;
  clock: Clock;
  intervalMs: number;
  logger?: Logger;
}): QuarantineSweeper {
  const logger = options.logger ?? silentLogger;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> = Promise.resolve(0);
  const runOnce = (): Promise<number> => {
    running = running.then(async () => {
      try {
        const changed = await sweepAddresses(options.store, options.settings, options.clock.now());
        if (changed > 0) logger.info({ changed }, 'quarantine sweep released or reset addresses');
        return changed;
      } catch (error) {
        logger.error({ err: describeError(error) }, 'quarantine sweep failed');
        return 0;
      }
    });
    return running;
  };
  return {
    start() {
      if (timer) return;
      void runOnce();
      timer = setInterval(() => void runOnce(), options.intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await running;
    },
    runOnce,
  };
}
