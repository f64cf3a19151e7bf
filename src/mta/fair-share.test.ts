import { describe, expect, it } from 'vitest';
import { claimQuotas, FairJobQueue, type Share } from './fair-share.ts';

interface Job {
  id: string;
  share: Share;
}

function share(deliveryId: number, priority = 5, weight = 1): Share {
  return { deliveryId, priority, weight };
}

function fill(queue: FairJobQueue<Job>, of: Share, count: number): void {
  for (let i = 0; i < count; i++) queue.push({ id: `${of.deliveryId}-${i}`, share: of });
}

function takeDeliveries(queue: FairJobQueue<Job>, count: number): number[] {
  const taken: number[] = [];
  for (let i = 0; i < count; i++) taken.push(queue.take()!.share.deliveryId);
  return taken;
}

function countOf(values: number[], value: number): number {
  return values.filter((v) => v === value).length;
}

describe('FairJobQueue', () => {
  it('alternates two deliveries of the same priority and weight, each in its own order', () => {
    const queue = new FairJobQueue<Job>();
    fill(queue, share(1), 50);
    fill(queue, share(2), 50);
    const first = [queue.take()!, queue.take()!, queue.take()!, queue.take()!];
    expect(first.map((job) => job.id)).toEqual(['1-0', '2-0', '1-1', '2-1']);
    expect(queue.size).toBe(96);
  });

  it('splits by weight among equal priorities', () => {
    const queue = new FairJobQueue<Job>();
    fill(queue, share(1, 5, 3), 100);
    fill(queue, share(2, 5, 1), 100);
    const taken = takeDeliveries(queue, 40);
    expect(countOf(taken, 1)).toBe(30);
    expect(countOf(taken, 2)).toBe(10);
  });

  it('takes every message of a higher priority first, then the rest', () => {
    const queue = new FairJobQueue<Job>();
    fill(queue, share(1, 5), 20);
    fill(queue, share(2, 9), 5);
    expect(takeDeliveries(queue, 7)).toEqual([2, 2, 2, 2, 2, 1, 1]);
  });

  it('peeks the jobs take() returns next, in that order, leaving them queued', () => {
    const queue = new FairJobQueue<Job>();
    fill(queue, share(1, 5, 3), 10);
    fill(queue, share(2, 5, 1), 10);
    fill(queue, share(3, 9), 2);
    takeDeliveries(queue, 3);
    const peeked = queue.peek(12).map((job) => job.id);
    expect(queue.size).toBe(19);
    expect(peeked).toHaveLength(12);
    expect(Array.from({ length: 12 }, () => queue.take()!.id)).toEqual(peeked);
    expect(queue.peek(100)).toHaveLength(7);
  });

  it('gives a delivery that joins late no credit for the time it was absent', () => {
    const queue = new FairJobQueue<Job>();
    fill(queue, share(1), 200);
    takeDeliveries(queue, 100);
    fill(queue, share(2), 100);
    const taken = takeDeliveries(queue, 20);
    expect(countOf(taken, 2)).toBe(10);
  });

  it('follows a priority or weight changed while the delivery runs (carried by its newest message)', () => {
    const queue = new FairJobQueue<Job>();
    fill(queue, share(1), 10);
    fill(queue, share(2), 10);
    queue.push({ id: 'raised', share: share(2, 8) });
    expect(takeDeliveries(queue, 11)).toEqual(Array(11).fill(2));
  });

  it('gives back the messages it would send last: lowest priority, then furthest ahead', () => {
    const queue = new FairJobQueue<Job>();
    fill(queue, share(1, 9), 3);
    fill(queue, share(2, 5), 3);
    fill(queue, share(3, 5), 6);
    const tail = queue.takeTail(5).map((job) => job.id);
    expect(tail.slice(0, 3)).toEqual(['3-5', '3-4', '3-3']);
    expect(tail.every((id) => !id.startsWith('1-'))).toBe(true);
    expect(queue.size).toBe(7);
    expect(queue.waiting().find((w) => w.deliveryId === 1)?.waiting).toBe(3);
    expect(queue.drain()).toHaveLength(7);
    expect(queue.size).toBe(0);
    expect(queue.take()).toBeUndefined();
  });

  it('counts a message without a share as one default delivery', () => {
    const queue = new FairJobQueue<{ id: number; share?: Share }>();
    queue.push({ id: 1 });
    queue.push({ id: 2 });
    expect([queue.take()?.id, queue.take()?.id]).toEqual([1, 2]);
  });
});

describe('claimQuotas', () => {
  it('splits a batch equally between equal deliveries and by weight otherwise', () => {
    expect(Object.fromEntries(claimQuotas([share(1), share(2)], 500))).toEqual({ 1: 250, 2: 250 });
    expect(Object.fromEntries(claimQuotas([share(1, 5, 4), share(2, 5, 1)], 500))).toEqual({ 1: 400, 2: 100 });
  });

  it('gives a higher priority nearly all of the batch and a lower one at least one message', () => {
    const quotas = claimQuotas([share(1, 9), share(2, 1), share(3, 8)], 500);
    expect(quotas.get(2)).toBe(1);
    expect(quotas.get(1)).toBeGreaterThan(quotas.get(3)! * 10);
    expect(quotas.get(1)! + quotas.get(3)!).toBeLessThanOrEqual(500);
  });

  it('gives quotas to the strongest deliveries only, so a batch stays a bounded number of statements', () => {
    const due = Array.from({ length: 80 }, (_, i) => share(i + 1, i < 5 ? 9 : 5));
    const quotas = claimQuotas(due, 1_000, 50);
    expect(quotas.size).toBe(50);
    for (let id = 1; id <= 5; id++) expect(quotas.has(id)).toBe(true);
  });

  it('hands out the whole batch, the rounding to the largest remainders, equal ones in drawn order', () => {
    // 100 over strengths 1, 1, 3/16 and 1/16: 44.4, 44.4, 8.3 and 2.8 before rounding.
    const due = [share(1, 6), share(2, 6), share(3, 5, 3), share(4, 5, 1)];
    const first = claimQuotas(due, 100, 50, () => 0);
    expect(Object.fromEntries(first)).toEqual({ 1: 45, 2: 44, 3: 8, 4: 3 });
    let draw = 1;
    const second = claimQuotas(due, 100, 50, () => draw--);
    expect(Object.fromEntries(second)).toEqual({ 1: 44, 2: 45, 3: 8, 4: 3 });
  });

  it('is empty with nothing due or no room', () => {
    expect(claimQuotas([], 100).size).toBe(0);
    expect(claimQuotas([share(1)], 0).size).toBe(0);
  });
});
