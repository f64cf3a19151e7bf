import { describe, expect, it } from 'vitest';
import { compileAffinities } from '../shaping/affinity.ts';
import { createSourceSelector } from './source-selection.ts';

const affinities = compileAffinities([
  {
    name: 'marketing',
    addresses: [
      { address: '127.0.0.2', heloName: 'mta2.herald.test', publicId: 2, weight: 5 },
      { address: '127.0.0.3', heloName: 'mta3.herald.test', publicId: 3, weight: 5 },
      { address: '127.0.0.4', heloName: 'mta4.herald.test', publicId: 4, weight: 1 },
    ],
  },
]);

function addressOf(choice: ReturnType<ReturnType<typeof createSourceSelector>['choose']>): string {
  if (choice.kind !== 'chosen') throw new Error(choice.message);
  return choice.source.address;
}

describe('source address of a message', () => {
  it('is the same at every attempt for one recipient (greylisting is keyed on the client IP), spread by weight over recipients', () => {
    const selector = createSourceSelector(affinities);
    const now = Date.UTC(2026, 2, 1);
    const counts = new Map<string, number>();
    for (let i = 0; i < 2_000; i++) {
      const recipient = `user${i}@greylist.test`;
      const first = addressOf(selector.choose('marketing', 'greylist.test', 'mx.greylist.test', now, recipient));
      for (let retry = 1; retry <= 3; retry++)
        expect(
          addressOf(
            selector.choose('marketing', 'greylist.test', 'mx.greylist.test', now + retry * 300_000, recipient),
          ),
        ).toBe(first);
      expect(
        addressOf(selector.choose('marketing', 'greylist.test', 'mx.greylist.test', now, recipient.toUpperCase())),
      ).toBe(first);
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    expect((counts.get('127.0.0.2') ?? 0) / 2_000).toBeGreaterThan(0.4);
    expect((counts.get('127.0.0.3') ?? 0) / 2_000).toBeGreaterThan(0.4);
    expect((counts.get('127.0.0.4') ?? 0) / 2_000).toBeGreaterThan(0.05);
    expect((counts.get('127.0.0.4') ?? 0) / 2_000).toBeLessThan(0.14);
  });

  it('moves a recipient to another address only while its own cannot reach the MX', () => {
    const selector = createSourceSelector(affinities);
    const now = Date.UTC(2026, 2, 1);
    const recipient = 'pat@greylist.test';
    const usual = addressOf(selector.choose('marketing', 'greylist.test', 'mx.greylist.test', now, recipient));
    selector.markUnreachable(usual, 'mx.greylist.test', now);
    const other = addressOf(selector.choose('marketing', 'greylist.test', 'mx.greylist.test', now + 1, recipient));
    expect(other).not.toBe(usual);
    expect(addressOf(selector.choose('marketing', 'greylist.test', 'mx.greylist.test', now + 2, recipient))).toBe(
      other,
    );
    expect(addressOf(selector.choose('marketing', 'greylist.test', 'mx.greylist.test', now + 600_000, recipient))).toBe(
      usual,
    );
  });
});
