import type { Logger } from '../common/logger.ts';

// The only timer of the engine: calls tick() every intervalMs, never two at once. Tests pass their
// own ticker (or none) and call tick() themselves under a manual clock.

export type Ticker = (tick: () => Promise<unknown>) => () => void;

export function intervalTicker(intervalMs: number, logger: Logger): Ticker {
  return (tick) => {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const loop = async () => {
      try {
        await tick();
      } catch (error) {
        logger.error({ err: error }, 'workflow scheduler tick failed');
      }
      if (!stopped) timer = setTimeout(loop, intervalMs);
    };
    timer = setTimeout(loop, 0);
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  };
}

export const manualTicker: Ticker = () => () => {};
