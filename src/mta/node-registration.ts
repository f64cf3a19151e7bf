import { hostname } from 'node:os';
import { AppError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { MtaStore, NodeHolder } from './mta-store.ts';

// Each running MTA process holds its node id in mta_nodes with a heartbeat (issue 12 item 7): claims
// are made under that id, so two live processes never share claims. A second process given an id a
// live process holds is refused (explicit id) or takes its own process-specific id (implicit id);
// an id whose holder's heartbeat expired, or whose holder on this host has exited, is taken over
// together with the claims it left.

/** This process, as mta_nodes records it. */
export interface ProcessIdentity {
  host: string;
  pid: number;
  /** Whether a process with this pid runs on this host (signal 0). */
  isAlive(pid: number): boolean;
}

export const thisProcess: ProcessIdentity = {
  host: hostname(),
  pid: process.pid,
  isAlive(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
};

export interface RegisterOptions {
  store: Pick<MtaStore, 'registerNode' | 'takeOverNode'>;
  nodeId: string;
  /** The id to use when `nodeId` is held by a live process (an implicit default id); absent = refuse. */
  fallbackNodeId?: string | undefined;
  identity: ProcessIdentity;
  now: number;
  /** A holder whose heartbeat is older than this is gone. */
  ttlMs: number;
  logger: Logger;
}

/** Registers this process; returns the node id it holds. Throws NODE_ID_IN_USE. */
export async function registerMtaNode(options: RegisterOptions): Promise<string> {
  const { store, identity, now, ttlMs } = options;
  const take = async (nodeId: string): Promise<NodeHolder | undefined> => {
    const node = { nodeId, host: identity.host, pid: identity.pid };
    const result = await store.registerNode(node, now, now - ttlMs);
    if (result.kind === 'registered') return undefined;
    const holder = result.holder;
    // Our own host, and its process has exited (kill -9, crash): no need to wait for the heartbeat.
    const gone = holder.host === identity.host && holder.pid !== identity.pid && !identity.isAlive(holder.pid);
    if (gone && (await store.takeOverNode(node, holder, now))) return undefined;
    return holder;
  };
  const holder = await take(options.nodeId);
  if (!holder) return options.nodeId;
  const fallback = options.fallbackNodeId;
  if (fallback !== undefined && (await take(fallback)) === undefined) {
    options.logger.info(
      { nodeId: fallback, heldBy: holder },
      'node id in use by another live MTA process: using a per-process id',
    );
    return fallback;
  }
  throw new AppError(
    'NODE_ID_IN_USE',
    `node id ${options.nodeId} is held by a live MTA process (host ${holder.host}, pid ${holder.pid}, heartbeat ${new Date(holder.heartbeatAt).toISOString()}): give this process its own nodeId, or stop the other one`,
    { details: { nodeId: options.nodeId, holder } },
  );
}
