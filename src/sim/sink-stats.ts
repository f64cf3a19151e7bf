// Counters of one simulated SMTP host. Mutated by the sink's sessions, read as a snapshot.

export interface SinkStats {
  /** TCP connections accepted since start. */
  connections: number;
  /** Connections by the client's (source) address, e.g. { '127.0.0.2': 3 }. */
  connectionsByClient: Record<string, number>;
  /** Connections currently open. */
  openSessions: number;
  maxConcurrentSessions: number;
  /** Transactions that ended with 250 after DATA. */
  messagesAccepted: number;
  /** RCPT commands answered 250. */
  recipientsAccepted: number;
  /** RCPT commands answered with anything else. */
  recipientsRefused: number;
  /** Every RCPT reply by code, e.g. { '250': 10, '550': 2, '451': 1 }. */
  rcptRepliesByCode: Record<string, number>;
  /** MAIL FROM refused by the rate limit (421 4.7.0). */
  rateLimited: number;
  /** Connections destroyed on purpose during DATA. */
  droppedDuringData: number;
  /** Most messages accepted on one connection. */
  maxMessagesPerConnection: number;
  /** Closed connections by number of messages accepted on them, e.g. { '0': 1, '100': 10 }. */
  messagesPerConnection: Record<string, number>;
  /** Bytes received in DATA sections (terminator included). */
  dataBytes: number;
}

export function emptySinkStats(): SinkStats {
  return {
    connections: 0,
    connectionsByClient: {},
    openSessions: 0,
    maxConcurrentSessions: 0,
    messagesAccepted: 0,
    recipientsAccepted: 0,
    recipientsRefused: 0,
    rcptRepliesByCode: {},
    rateLimited: 0,
    droppedDuringData: 0,
    maxMessagesPerConnection: 0,
    messagesPerConnection: {},
    dataBytes: 0,
  };
}

export function copySinkStats(stats: SinkStats): SinkStats {
  return {
    ...stats,
    connectionsByClient: { ...stats.connectionsByClient },
    rcptRepliesByCode: { ...stats.rcptRepliesByCode },
    messagesPerConnection: { ...stats.messagesPerConnection },
  };
}

/** Sums per-host stats; maxima are the largest seen on any single host. */
export function sumSinkStats(all: Iterable<SinkStats>): SinkStats {
  const total = emptySinkStats();
  for (const stats of all) {
    total.connections += stats.connections;
    addCounts(total.connectionsByClient, stats.connectionsByClient);
    total.openSessions += stats.openSessions;
    total.maxConcurrentSessions = Math.max(total.maxConcurrentSessions, stats.maxConcurrentSessions);
    total.messagesAccepted += stats.messagesAccepted;
    total.recipientsAccepted += stats.recipientsAccepted;
    total.recipientsRefused += stats.recipientsRefused;
    addCounts(total.rcptRepliesByCode, stats.rcptRepliesByCode);
    total.rateLimited += stats.rateLimited;
    total.droppedDuringData += stats.droppedDuringData;
    total.maxMessagesPerConnection = Math.max(total.maxMessagesPerConnection, stats.maxMessagesPerConnection);
    addCounts(total.messagesPerConnection, stats.messagesPerConnection);
    total.dataBytes += stats.dataBytes;
  }
  return total;
}

export function increment(counts: Record<string, number>, key: string | number, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, value] of Object.entries(from)) increment(into, key, value);
}
