import { expect, it } from 'vitest';
import { WindowCounter } from './sliding-window.ts';

it('counts over the sliding window, to one bucket', () => {
  const counter = new WindowCounter(60_000, 60); // one-second buckets
  counter.add(1_000);
  counter.add(1_500, 2);
  counter.add(30_000);
  expect(counter.total(30_000)).toBe(4);
  expect(counter.total(61_000)).toBe(1); // the first second has left the window
  expect(counter.total(91_000)).toBe(0);
  counter.add(91_000);
  expect(counter.total(91_000)).toBe(1);
  counter.reset();
  expect(counter.total(91_000)).toBe(0);
});

it('holds no buckets until it counts something: most counters of a small MX host never do', () => {
  const refusals = new WindowCounter(3_600_000);
  expect(refusals.heldBytes).toBe(0);
  expect(refusals.total(1_000)).toBe(0);
  expect(refusals.heldBytes).toBe(0);
  const messages = new WindowCounter(3_600_000);
  messages.add(1_000);
  expect(messages.heldBytes).toBe(2 * 60 * Float64Array.BYTES_PER_ELEMENT);
  messages.reset();
  expect(messages.heldBytes).toBe(0);
});
