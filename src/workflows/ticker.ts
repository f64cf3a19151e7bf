import type { Logger } from '../common/logger.ts';

// The only timer of the engine: calls tick() every intervalMs, never two at once. Tests pass their
// own ticker (or none) and call tick() themselves under a manual clock.

/** Starts calling tick(); the returned function stops it and resolves once no tick is in flight. */
export type Ticker = (tick: () => Promise<unknown>) => () => Promise<void>;

export function intervalTicker(intervalMs: number, logger: Logger): Ticker {
  return (tick) => {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let inFlight: Promise<void> = Promise.resolve();
    const loop = () => {
      inFlight = (async () => {
        try {
          await tick();
        } catch (error) {
          logger.error({ err: error }, 'workflow scheduler tick failed');
        }
        if (!stopped) timer = setTimeout(loop, intervalMs);
      })();
    };
    timer = setTimeout(loop, 0);
    return async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
    };
  };
}

export const manualTicker: Ticker = () => async () => {};
