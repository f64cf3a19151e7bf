import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { manualClock } from '../common/clock.ts';
import { createLogger } from '../common/logger.ts';
import type { StaleEvent } from './dns-cache.ts';
import { staleLogger } from './mta-resolver.ts';

// A resolver outage makes every domain sent to go stale at once: one warning each was 20,000 lines
// for a list of 20,000 domains, and again when their time ran out.
it('logs at most 20 stale answer lines a minute, then how many were left out', () => {
  const lines: Array<{ event: string; name?: string; suppressed?: number }> = [];
  const logger = createLogger({
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString()));
        callback();
      },
    }),
  });
  const clock = manualClock(Date.UTC(2026, 0, 1));
  const log = staleLogger(logger, clock);
  const serving = (name: string): StaleEvent => ({
    state: 'serving',
    name,
    reason: `MX lookup for ${name} failed: ETIMEOUT`,
    since: clock.now(),
    until: clock.now() + 86_400_000,
  });
  for (let i = 0; i < 500; i++) log(serving(`d${i}.test`));
  expect(lines).toHaveLength(20);
  expect(lines.every((line) => line.event === 'mta.dns_stale_serving')).toBe(true);
  clock.advance(60_000);
  log({ state: 'recovered', name: 'd0.test', since: clock.now() - 60_000, reason: 'MX lookup for d0.test failed' });
  expect(lines.slice(20).map((line) => [line.event, line.suppressed ?? line.name])).toEqual([
    ['mta.dns_stale_suppressed', 480],
    ['mta.dns_stale_recovered', 'd0.test'],
  ]);
});
