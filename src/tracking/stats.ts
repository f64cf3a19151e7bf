import type { Store } from '../store/database.ts';
import { deliveryIndicators } from './tracking-store.ts';

// The consolidated indicators of one delivery as one object (`herald delivery stats --json`,
// the demo summary): add fields, never rename them.

export interface ScopeIndicators {
  sent: number;
  uniqueOpens: number;
  totalOpens: number;
  estimatedOpens: number;
  uniqueClickers: number;
  totalClicks: number;
  reactivity: number;
  optOuts: number;
  mirrorViews: number;
}

export interface DeliveryTrackingStats {
  deliveryId: number;
  /** When the tracking workflow last consolidated this delivery; null: never (no event yet). */
  computedAt: number | null;
  /** Every event counted. */
  all: ScopeIndicators;
  /** Events flagged as automated (scanners, pre-fetchers, privacy proxies) left out. */
  human: ScopeIndicators;
  links: Array<{
    index: number;
    url: string;
    label: string;
    clicks: number;
    clickers: number;
    humanClicks: number;
    humanClickers: number;
  }>;
  domains: Array<{
    domain: string;
    sent: number;
    openers: number;
    clickers: number;
    clicks: number;
    optOuts: number;
    humanOpeners: number;
    humanClickers: number;
  }>;
}

const empty: ScopeIndicators = {
  sent: 0,
  uniqueOpens: 0,
  totalOpens: 0,
  estimatedOpens: 0,
  uniqueClickers: 0,
  totalClicks: 0,
  reactivity: 0,
  optOuts: 0,
  mirrorViews: 0,
};

export async function deliveryTrackingStats(store: Store, deliveryId: number): Promise<DeliveryTrackingStats> {
  const data = await deliveryIndicators(store, deliveryId);
  const scope = (name: 'all' | 'human'): ScopeIndicators => {
    const row = data.indicators.find((r) => r.scope === name);
    if (!row) return { ...empty };
    return {
      sent: Number(row.sent),
      uniqueOpens: Number(row.unique_opens),
      totalOpens: Number(row.total_opens),
      estimatedOpens: Number(row.estimated_opens),
      uniqueClickers: Number(row.unique_clickers),
      totalClicks: Number(row.total_clicks),
      reactivity: Number(row.reactivity),
      optOuts: Number(row.opt_outs),
      mirrorViews: Number(row.mirror_views),
    };
  };
  const linkStat = (index: number, name: 'all' | 'human') =>
    data.links.find((r) => Number(r.link_index) === index && r.scope === name);
  const domainStat = (domain: string, name: 'all' | 'human') =>
    data.domains.find((r) => r.domain === domain && r.scope === name);
  return {
    deliveryId,
    computedAt: data.indicators[0] ? Number(data.indicators[0].computed_at) : null,
    all: scope('all'),
    human: scope('human'),
    links: data.linkRows.map((link) => ({
      index: link.index,
      url: link.urlTemplate,
      label: link.label,
      clicks: Number(linkStat(link.index, 'all')?.clicks ?? 0),
      clickers: Number(linkStat(link.index, 'all')?.clickers ?? 0),
      humanClicks: Number(linkStat(link.index, 'human')?.clicks ?? 0),
      humanClickers: Number(linkStat(link.index, 'human')?.clickers ?? 0),
    })),
    domains: data.domains
      .filter((r) => r.scope === 'all')
      .map((r) => ({
        domain: r.domain,
        sent: Number(r.sent),
        openers: Number(r.openers),
        clickers: Number(r.clickers),
        clicks: Number(r.clicks),
        optOuts: Number(r.opt_outs),
        humanOpeners: Number(domainStat(r.domain, 'human')?.openers ?? 0),
        humanClickers: Number(domainStat(r.domain, 'human')?.clickers ?? 0),
      })),
  };
}

const percent = (part: number, whole: number) => (whole === 0 ? '-' : `${((part / whole) * 100).toFixed(1)} %`);

export function formatTrackingStats(stats: DeliveryTrackingStats): string[] {
  const { all, human } = stats;
  const row = (name: string, a: number, h: number, ofSent = true) =>
    `  ${name.padEnd(18)} ${String(a).padStart(8)} ${ofSent ? percent(a, all.sent).padStart(8) : ''.padStart(8)}   ${String(h).padStart(8)}`;
  const lines = [
    `delivery ${stats.deliveryId} tracking (${stats.computedAt === null ? 'not consolidated yet' : `consolidated ${new Date(stats.computedAt).toISOString()}`})`,
    `  ${''.padEnd(18)} ${'all'.padStart(8)} ${'of sent'.padStart(8)}   ${'human'.padStart(8)}`,
    row('sent', all.sent, human.sent, false),
    row('unique opens', all.uniqueOpens, human.uniqueOpens),
    row('estimated opens', all.estimatedOpens, human.estimatedOpens),
    row('total opens', all.totalOpens, human.totalOpens, false),
    row('unique clickers', all.uniqueClickers, human.uniqueClickers),
    row('total clicks', all.totalClicks, human.totalClicks, false),
    `  ${'reactivity'.padEnd(18)} ${`${(all.reactivity * 100).toFixed(1)} %`.padStart(8)} ${''.padStart(8)}   ${`${(human.reactivity * 100).toFixed(1)} %`.padStart(8)}`,
    row('opt-outs', all.optOuts, human.optOuts),
    row('mirror page views', all.mirrorViews, human.mirrorViews, false),
  ];
  if (stats.links.length > 0) {
    lines.push('  by link (clicks / clickers, human in brackets):');
    for (const link of stats.links)
      lines.push(
        `    #${link.index} ${link.clicks} / ${link.clickers} (${link.humanClicks} / ${link.humanClickers})  ${link.label || '-'}  ${link.url}`,
      );
  }
  if (stats.domains.length > 0) {
    lines.push('  by recipient domain (sent, openers, clickers, opt-outs):');
    for (const d of stats.domains)
      lines.push(
        `    ${d.domain.padEnd(28)} ${d.sent} sent, ${d.openers} openers, ${d.clickers} clickers, ${d.optOuts} opt-outs`,
      );
  }
  return lines;
}
