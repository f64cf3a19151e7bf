import type { DoctorCheck, Finding } from './finding.ts';
import { destinationOf, logsCommand, quotedIps, replyKind } from './replies.ts';
import type { DeliveryFacts, DoctorSnapshot, ReplyGroup } from './snapshot.ts';

// Reputation blocks: providers refusing the sender, not the recipient — blocklist wording (Spamhaus,
// "blacklisted", "poor reputation") or a 5xx 5.7.x policy reply. They hit every recipient of a
// provider from the source addresses that carry the bad reputation: retrying from the same address
// only makes it worse. Reported per delivery with the source addresses (public ids) that met them.

export const reputationCheck: DoctorCheck = {
  name: 'reputation',
  description:
    'deliveries refused for the sender reputation: blocklist wording or 5.7.x policy replies, per MX host and source address',
  run(snapshot, _now, settings) {
    const findings: Finding[] = [];
    for (const delivery of snapshot.deliveries) {
      if (delivery.scope === 'recent' || delivery.executionPeer !== null) continue;
      const groups = delivery.replies
        .map((group) => ({ group, kind: replyKind(group) }))
        .filter(({ kind }) => kind.kind === 'reputation');
      const affected = groups.reduce((sum, { group }) => sum + group.count, 0);
      if (affected < settings.replyMinMessages) continue;
      const blocklisted = groups.some(({ kind }) => kind.kind === 'reputation' && kind.detail === 'blocklist');
      const byDestination = summarize(groups.map(({ group }) => group));
      const sources = sourcesFor(
        snapshot,
        delivery,
        byDestination.map((d) => d.destination),
      );
      const listedIps = [...new Set(groups.flatMap(({ group }) => quotedIps(group.sample)))];
      const top = byDestination[0]!;
      const sourceText =
        sources.length === 0
          ? 'the host default address (no affinity configured)'
          : sources
              .map((s) => `${s.address ?? `public id ${s.publicId}`}${s.affinity ? ` (affinity ${s.affinity})` : ''}`)
              .join(', ');
      const pending = groups.reduce((sum, { group }) => sum + (group.status === 'pending' ? group.count : 0), 0);
      findings.push({
        check: 'reputation',
        severity: blocklisted ? 'critical' : 'warning',
        subject: `delivery ${delivery.id}`,
        symptom: `${affected} messages refused for the sender's reputation by ${byDestination.map((d) => `${d.destination} (${d.count})`).join(', ')}: ${pending} still pending, ${affected - pending} failed`,
        cause: `${blocklisted ? 'a blocklist or reputation refusal' : 'a 5.7.x policy refusal'} of the source address${listedIps.length > 0 ? ` ${listedIps.join(', ')}` : 'es'}, e.g. "${top.sample}"; sent from ${sourceText}`,
        fix: `stop sending from the refused address: set its weight to 0 (or remove it) in shaping.affinities${delivery.affinity ? ` (affinity "${delivery.affinity}")` : ''} and pause this delivery meanwhile (\`herald delivery pause ${delivery.id}\`); look the address up on the blocklist the reply names (e.g. https://check.spamhaus.org) and request delisting once the cause is fixed; contact the provider's postmaster; resume with \`herald delivery resume ${delivery.id}\``,
        evidence: {
          deliveryId: delivery.id,
          messages: affected,
          pending,
          failed: affected - pending,
          byDestination,
          listedIps,
          sources,
          affinity: delivery.affinity,
        },
        impact: affected,
        logs: logsCommand(delivery.id, {
          ...(byDestination.length === 1 && top.mx ? { mx: top.mx } : {}),
          ...(groups.every(({ group }) => group.enhanced === groups[0]!.group.enhanced) && groups[0]!.group.enhanced
            ? { enhanced: groups[0]!.group.enhanced }
            : { code: groups[0]!.group.code }),
        }),
      });
    }
    return findings;
  },
};

export interface DestinationSummary {
  destination: string;
  mx: string | null;
  count: number;
  pending: number;
  failed: number;
  replies: string[];
  sample: string;
}

/** Groups of logs summed per MX host (or domain when none was reached), the largest first. */
export function summarize(groups: readonly ReplyGroup[]): DestinationSummary[] {
  const map = new Map<string, DestinationSummary>();
  for (const group of groups) {
    const destination = destinationOf(group);
    const entry = map.get(destination) ?? {
      destination,
      mx: group.mxHost,
      count: 0,
      pending: 0,
      failed: 0,
      replies: [],
      sample: group.sample,
    };
    entry.count += group.count;
    if (group.status === 'pending') entry.pending += group.count;
    else entry.failed += group.count;
    const reply = [group.code ?? '', group.enhanced ?? '', group.sample].filter((p) => p !== '').join(' ');
    if (entry.replies.length < 3 && !entry.replies.includes(reply)) entry.replies.push(reply);
    map.set(destination, entry);
  }
  return [...map.values()].sort((a, b) => b.count - a.count || a.destination.localeCompare(b.destination));
}

interface SourceFacts {
  publicId: number;
  address: string | null;
  heloName: string | null;
  affinity: string | null;
  /** From the MTA shaping snapshots, last hour, on paths to these MX hosts. */
  messages: number;
  deferrals4xx: number;
  failures5xx: number;
}

function sourcesFor(snapshot: DoctorSnapshot, delivery: DeliveryFacts, destinations: string[]): SourceFacts[] {
  const hosts = new Set(destinations.map((d) => d.toLowerCase()));
  const byId = new Map<number, SourceFacts>();
  const configured = snapshot.configuration.affinities;
  const describe = (publicId: number): SourceFacts => {
    const affinity =
      configured.find((a) => a.name === delivery.affinity && a.addresses.some((x) => x.publicId === publicId)) ??
      configured.find((a) => a.addresses.some((x) => x.publicId === publicId));
    const address = affinity?.addresses.find((x) => x.publicId === publicId);
    return {
      publicId,
      address: address?.address ?? null,
      heloName: address?.heloName ?? null,
      affinity: affinity?.name ?? null,
      messages: 0,
      deferrals4xx: 0,
      failures5xx: 0,
    };
  };
  for (const path of snapshot.shaping.paths) {
    if (!hosts.has(path.mxHost.toLowerCase())) continue;
    const entry = byId.get(path.publicId) ?? describe(path.publicId);
    entry.messages += path.messages;
    entry.deferrals4xx += path.deferrals['4xx'];
    entry.failures5xx += path.deferrals['5xx'];
    byId.set(path.publicId, entry);
  }
  // No MTA snapshot names the paths: the addresses of the delivery's affinity are the candidates.
  if (byId.size === 0) {
    const affinity = configured.find((a) => a.name === (delivery.affinity ?? 'default'));
    for (const address of affinity?.addresses ?? []) byId.set(address.publicId, describe(address.publicId));
  }
  return [...byId.values()].sort((a, b) => b.failures5xx + b.deferrals4xx - (a.failures5xx + a.deferrals4xx));
}
