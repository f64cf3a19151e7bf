import type { ReplyClass } from './reply.ts';
import { WindowCounter } from './sliding-window.ts';
import { hourMs } from './throttle.ts';
import type { Share } from '../mta/fair-share.ts';

/** How far back `shares` counts: "how the path's budget is being split" is a recent figure. */
export const shareWindowMs = 5 * 60_000;

// Per-path counters over a sliding hour, kept by each MTA process for `herald mx stats` and the
// doctor. A path is (rule, public id, MX IP): keyed by rule NAME, so a reload keeps them.

export interface PathRef {
  /** The MX host name the rule was matched on. */
  mxHost: string;
  mxIp: string;
  /** Public id of the source address (0 when the MTA uses no affinity). */
  publicId: number;
}

export type ConnectionOutcome = 'accepted' | 'refused' | 'unreachable';

export interface PathStats {
  pathId: string;
  rule: string;
  mxHost: string;
  mxIp: string;
  publicId: number;
  openConnections: number;
  /** Counts in the last window (an hour by default): so they read as rates per hour. */
  messages: number;
  connectionsAccepted: number;
  connectionsRefused: number;
  unreachable: number;
  deferrals: { '4xx': number; '5xx': number; local: number };
  lastActivityAt: number;
  /** Messages per delivery over the last 5 minutes (shareWindowMs), with its priority and weight,
   *  most first: how the path's budget is being split (src/mta/fair-share.ts). */
  shares?: Array<Share & { messages: number }>;
}

interface PathEntry {
  rule: string;
  path: PathRef;
  open: number;
  messages: WindowCounter;
  accepted: WindowCounter;
  refused: WindowCounter;
  unreachable: WindowCounter;
  deferred4xx: WindowCounter;
  failed5xx: WindowCounter;
  local: WindowCounter;
  shares: Map<number, { share: Share; messages: WindowCounter }>;
  lastActivityAt: number;
}

export function pathIdOf(rule: string, path: PathRef): string {
  return `${rule}|${path.publicId}|${path.mxIp}`;
}

export class PathCounters {
  readonly #windowMs: number;
  readonly #entries = new Map<string, PathEntry>();

  constructor(windowMs = hourMs) {
    this.#windowMs = windowMs;
  }

  connectionOpened(rule: string, path: PathRef, now: number): void {
    const entry = this.#entry(rule, path, now);
    entry.open += 1;
  }

  connectionClosed(rule: string, path: PathRef, now: number): void {
    const entry = this.#entry(rule, path, now);
    entry.open = Math.max(0, entry.open - 1);
  }

  recordConnection(rule: string, path: PathRef, outcome: ConnectionOutcome, now: number): void {
    const entry = this.#entry(rule, path, now);
    entry[outcome === 'accepted' ? 'accepted' : outcome === 'refused' ? 'refused' : 'unreachable'].add(now);
  }

  /** One message's final reply on this path: 2xx counts as sent, others as deferrals/failures by class. */
  recordMessage(rule: string, path: PathRef, replyClass: ReplyClass, now: number, share?: Share): void {
    const entry = this.#entry(rule, path, now);
    if (share) {
      let counted = entry.shares.get(share.deliveryId);
      if (!counted) {
        counted = { share, messages: new WindowCounter(shareWindowMs) };
        entry.shares.set(share.deliveryId, counted);
      }
      counted.share = share;
      counted.messages.add(now);
    }
    if (replyClass === '2xx') entry.messages.add(now);
    else if (replyClass === '4xx') entry.deferred4xx.add(now);
    else if (replyClass === '5xx') entry.failed5xx.add(now);
    else entry.local.add(now);
  }

  /** Current figures; paths idle for a whole window with no open connection are dropped. */
  snapshot(now: number): PathStats[] {
    const out: PathStats[] = [];
    for (const [pathId, entry] of this.#entries) {
      if (entry.open === 0 && now - entry.lastActivityAt > this.#windowMs) {
        this.#entries.delete(pathId);
        continue;
      }
      out.push({
        pathId,
        rule: entry.rule,
        mxHost: entry.path.mxHost,
        mxIp: entry.path.mxIp,
        publicId: entry.path.publicId,
        openConnections: entry.open,
        messages: entry.messages.total(now),
        connectionsAccepted: entry.accepted.total(now),
        connectionsRefused: entry.refused.total(now),
        unreachable: entry.unreachable.total(now),
        deferrals: {
          '4xx': entry.deferred4xx.total(now),
          '5xx': entry.failed5xx.total(now),
          local: entry.local.total(now),
        },
        lastActivityAt: entry.lastActivityAt,
        shares: sharesOf(entry, now),
      });
    }
    return out.sort((a, b) => a.pathId.localeCompare(b.pathId));
  }

  #entry(rule: string, path: PathRef, now: number): PathEntry {
    const pathId = pathIdOf(rule, path);
    let entry = this.#entries.get(pathId);
    if (!entry) {
      const counter = () => new WindowCounter(this.#windowMs);
      entry = {
        rule,
        path: { ...path },
        open: 0,
        messages: counter(),
        accepted: counter(),
        refused: counter(),
        unreachable: counter(),
        deferred4xx: counter(),
        failed5xx: counter(),
        local: counter(),
        shares: new Map(),
        lastActivityAt: now,
      };
      this.#entries.set(pathId, entry);
    }
    entry.lastActivityAt = now;
    entry.path.mxHost = path.mxHost;
    return entry;
  }
}

function sharesOf(entry: PathEntry, now: number): Array<Share & { messages: number }> {
  const shares: Array<Share & { messages: number }> = [];
  for (const [deliveryId, counted] of entry.shares) {
    const messages = counted.messages.total(now);
    if (messages === 0) entry.shares.delete(deliveryId);
    else shares.push({ ...counted.share, messages });
  }
  return shares.sort((a, b) => b.messages - a.messages || a.deliveryId - b.deliveryId);
}
