import { describe, expect, it } from 'vitest';
import { automatedFlags } from './automation.ts';
import { createConsolidation, type ConsolidationEvent } from './consolidate.ts';

// A scanner opening every link of a message with a browser's user agent, 300 ms apart: the server
// flags its clicks from the third on (burst), so the first two were counted as a human clicker —
// every scanned recipient a "human" clicker, reactivity inflated. Now the whole burst is left out.

const t0 = Date.UTC(2026, 2, 1, 12);
let nextId = 1;
const click = (logId: number, at: number, flags = 0, linkIndex = 0): ConsolidationEvent => ({
  id: nextId++,
  logId,
  kind: 'click',
  linkIndex,
  at,
  flags,
  domain: 'example.test',
});
const open = (logId: number, at: number): ConsolidationEvent => ({
  ...click(logId, at),
  kind: 'open',
  linkIndex: null,
});

function human(events: ConsolidationEvent[]) {
  const consolidation = createConsolidation(60_000);
  for (const event of events) consolidation.add(event);
  const rows = consolidation.result(new Map([['example.test', 3]]));
  return {
    all: rows.indicators.find((row) => row.scope === 'all')!,
    human: rows.indicators.find((row) => row.scope === 'human')!,
    humanLinks: rows.links.filter((row) => row.scope === 'human').map((row) => [row.linkIndex, row.clicks]),
  };
}

describe('consolidation of click bursts', () => {
  it('leaves a whole burst out of human, its first clicks included', () => {
    const { all, human: h } = human([
      open(1, t0),
      click(1, t0 + 60_000, 0, 0),
      click(1, t0 + 60_300, 0, 1),
      click(1, t0 + 60_600, automatedFlags.burst, 2),
      click(1, t0 + 60_900, automatedFlags.burst, 3),
    ]);
    expect(all).toMatchObject({ uniqueClickers: 1, totalClicks: 4 });
    expect(h).toMatchObject({ uniqueOpens: 1, uniqueClickers: 0, totalClicks: 0, estimatedOpens: 1 });
  });

  it('leaves out a burst the server never flagged (its clicks reached different tracking nodes)', () => {
    const { human: h } = human([
      click(2, t0, 0, 0),
      click(3, t0 + 100),
      click(2, t0 + 500, 0, 1),
      click(2, t0 + 900, 0, 2),
    ]);
    // Recipient 3's single click counts; recipient 2's three clicks within 2 s do not.
    expect(h).toMatchObject({ uniqueClickers: 1, totalClicks: 1 });
  });

  it('counts a person clicking a few links seconds apart, and clicks before and after a burst', () => {
    const { human: h, humanLinks } = human([
      click(4, t0, 0, 0),
      click(4, t0 + 1_500, 0, 1),
      click(4, t0 + 5_000, 0, 2),
      click(4, t0 + 6_000, 0, 0),
      click(5, t0 + 10_000, 0, 0),
      click(5, t0 + 20_000, 0, 0),
      click(5, t0 + 20_100, 0, 1),
      click(5, t0 + 20_200, automatedFlags.burst, 2),
      click(5, t0 + 40_000, 0, 1),
    ]);
    expect(h).toMatchObject({ uniqueClickers: 2, totalClicks: 6 });
    expect(humanLinks).toEqual([
      [0, 3],
      [1, 2],
      [2, 1],
    ]);
  });
});
