import type { TrackingEventKind } from '../store/tables.ts';
import { clickBurst } from './automation.ts';

// Raw events → indicators of one delivery, twice: `all` events, and `human` (flagged events left
// out). Pure and incremental: feed events in id order with add(), then read result(). Time-free.
//
// - unique opens: recipients whose pixel loaded; total opens: pixel loads, one recipient's loads
//   closer than openDedupMs counting once (mail clients reload images as a message is re-rendered).
// - estimated opens: recipients known to have opened by ANY sign — pixel, click or mirror view. A
//   text-only message (or a client blocking images) never loads the pixel, yet a click proves it was
//   read: this is the correction for text-only messages.
// - reactivity: unique clickers / estimated opens.
// - a burst (clickBurst: a scanner following every link of a message) is left out of `human` whole:
//   the server flags a burst's clicks from the third on (it cannot know the first ones will be
//   followed), and not at all when they reach different tracking nodes, so unflagged clicks are held
//   back here until no burst can include them.

type Scope = 'all' | 'human';

interface ScopeState {
  openers: Set<number>;
  lastOpenAt: Map<number, number>;
  totalOpens: number;
  /** Clicks per recipient (the keys are the unique clickers). */
  clicks: Map<number, number>;
  totalClicks: number;
  mirrorViewers: Set<number>;
  mirrorViews: number;
  optOuts: Set<number>;
  links: Map<number, { clicks: number; clickers: Set<number> }>;
}

const newScope = (): ScopeState => ({
  openers: new Set(),
  lastOpenAt: new Map(),
  totalOpens: 0,
  clicks: new Map(),
  totalClicks: 0,
  mirrorViewers: new Set(),
  mirrorViews: 0,
  optOuts: new Set(),
  links: new Map(),
});

/** One raw event as consolidation reads it (tracking-store.ts deliveryEventsPage), with its recipient domain. */
export interface ConsolidationEvent {
  id: number;
  logId: number;
  kind: TrackingEventKind;
  linkIndex: number | null;
  at: number;
  flags: number;
  domain: string;
}

/** The consolidated rows of one delivery, as replaceDeliveryIndicators writes them. */
export interface IndicatorRows {
  indicators: Array<{
    scope: 'all' | 'human';
    sent: number;
    uniqueOpens: number;
    totalOpens: number;
    estimatedOpens: number;
    uniqueClickers: number;
    totalClicks: number;
    optOuts: number;
    mirrorViews: number;
    reactivity: number;
  }>;
  links: Array<{ scope: 'all' | 'human'; linkIndex: number; clicks: number; clickers: number }>;
  domains: Array<{
    scope: 'all' | 'human';
    domain: string;
    sent: number;
    openers: number;
    clickers: number;
    clicks: number;
    optOuts: number;
  }>;
}

export interface Consolidation {
  add(event: ConsolidationEvent): void;
  result(sentByDomain: ReadonlyMap<string, number>): IndicatorRows;
}

export function createConsolidation(openDedupMs: number): Consolidation {
  const scopes: Record<Scope, ScopeState> = { all: newScope(), human: newScope() };
  const domainOf = new Map<number, string>();
  // Per recipient: times of its clicks within the burst window, and its unflagged clicks not yet
  // counted as human (at most clickBurst.clicks - 1 of them).
  const recentClicks = new Map<number, number[]>();
  const heldClicks = new Map<number, ConsolidationEvent[]>();

  function addClick(event: ConsolidationEvent): void {
    const recent = (recentClicks.get(event.logId) ?? []).filter((at) => event.at - at < clickBurst.windowMs);
    recent.push(event.at);
    recentClicks.set(event.logId, recent);
    const held = heldClicks.get(event.logId) ?? [];
    // Clicks a window older than this one can be in no burst any more: they count.
    while (held.length > 0 && event.at - held[0]!.at >= clickBurst.windowMs) apply(scopes.human, held.shift()!);
    if (recent.length >= clickBurst.clicks) held.length = 0;
    else if (event.flags === 0) held.push(event);
    heldClicks.set(event.logId, held);
  }

  function apply(state: ScopeState, event: ConsolidationEvent): void {
    switch (event.kind) {
      case 'open': {
        state.openers.add(event.logId);
        const last = state.lastOpenAt.get(event.logId);
        if (last === undefined || Math.abs(event.at - last) >= openDedupMs) {
          state.totalOpens++;
          state.lastOpenAt.set(event.logId, event.at);
        }
        break;
      }
      case 'click': {
        state.clicks.set(event.logId, (state.clicks.get(event.logId) ?? 0) + 1);
        state.totalClicks++;
        if (event.linkIndex !== null) {
          const link = state.links.get(event.linkIndex) ?? { clicks: 0, clickers: new Set<number>() };
          link.clicks++;
          link.clickers.add(event.logId);
          state.links.set(event.linkIndex, link);
        }
        break;
      }
      case 'mirror':
        state.mirrorViewers.add(event.logId);
        state.mirrorViews++;
        break;
      case 'unsubscribe':
        state.optOuts.add(event.logId);
        break;
    }
  }

  return {
    add(event) {
      domainOf.set(event.logId, event.domain);
      apply(scopes.all, event);
      if (event.kind === 'click') addClick(event);
      else if (event.flags === 0) apply(scopes.human, event);
    },
    result(sentByDomain) {
      for (const held of heldClicks.values()) for (const click of held) apply(scopes.human, click);
      heldClicks.clear();
      const sent = [...sentByDomain.values()].reduce((a, b) => a + b, 0);
      const rows: IndicatorRows = { indicators: [], links: [], domains: [] };
      for (const scope of ['all', 'human'] as const) {
        const state = scopes[scope];
        const estimated = new Set([...state.openers, ...state.clicks.keys(), ...state.mirrorViewers]);
        rows.indicators.push({
          scope,
          sent,
          uniqueOpens: state.openers.size,
          totalOpens: state.totalOpens,
          estimatedOpens: estimated.size,
          uniqueClickers: state.clicks.size,
          totalClicks: state.totalClicks,
          optOuts: state.optOuts.size,
          mirrorViews: state.mirrorViews,
          reactivity: estimated.size === 0 ? 0 : Math.round((state.clicks.size / estimated.size) * 10_000) / 10_000,
        });
        for (const [linkIndex, link] of [...state.links].sort((a, b) => a[0] - b[0])) {
          rows.links.push({ scope, linkIndex, clicks: link.clicks, clickers: link.clickers.size });
        }
        const byDomain = new Map<string, { openers: number; clickers: number; clicks: number; optOuts: number }>();
        const bump = (logId: number, field: 'openers' | 'clickers' | 'clicks' | 'optOuts', n = 1) => {
          const domain = domainOf.get(logId) ?? '(unknown)';
          const entry = byDomain.get(domain) ?? { openers: 0, clickers: 0, clicks: 0, optOuts: 0 };
          entry[field] += n;
          byDomain.set(domain, entry);
        };
        for (const logId of estimated) bump(logId, 'openers');
        for (const [logId, n] of state.clicks) {
          bump(logId, 'clickers');
          bump(logId, 'clicks', n);
        }
        for (const logId of state.optOuts) bump(logId, 'optOuts');
        const domains = new Set([...sentByDomain.keys(), ...byDomain.keys()]);
        for (const domain of [...domains].sort()) {
          const entry = byDomain.get(domain) ?? { openers: 0, clickers: 0, clicks: 0, optOuts: 0 };
          rows.domains.push({ scope, domain, sent: sentByDomain.get(domain) ?? 0, ...entry });
        }
      }
      return rows;
    },
  };
}
