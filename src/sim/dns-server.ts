// A tiny authoritative DNS server over UDP for the simulated `.test` zone, so the MTA resolves MX
// hosts through a real resolver (node's dns.promises.Resolver with setServers) instead of a stub.
// It also listens over TCP on the same port: an answer over 512 bytes (a domain listing hundreds
// of MX hosts) is truncated over UDP and the resolver asks again over TCP (RFC 1035 §4.2.2).
import { createSocket, type RemoteInfo } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { AppError } from '../common/errors.ts';
import {
  aaaaData,
  aData,
  buildResponse,
  maxTcpBytes,
  mxData,
  parseQuery,
  recordTypes,
  responseCodes,
  type DnsAnswer,
  type DnsQuestion,
} from './dns-packet.ts';

export interface DnsRecords {
  /** `{ exchange: '.', priority: 0 }` alone is a null MX (RFC 7505: the domain accepts no mail). */
  mx?: Array<{ exchange: string; priority: number }>;
  a?: string[];
  aaaa?: string[];
  /** Answer every query for the name with SERVFAIL (a broken authoritative server or resolver). */
  servfail?: boolean;
  /** Never answer queries for the name (a name server that is down or drops them: the resolver times out). */
  silent?: boolean;
  /** TTL of this name's records, in seconds (default: the server's ttlSeconds). */
  ttlSeconds?: number;
}

export interface DnsServerOptions {
  records: Record<string, DnsRecords>;
  ttlSeconds?: number;
  host?: string;
  port?: number;
}

export interface DnsServerStats {
  queries: number;
  answered: number;
  nxdomain: number;
  servfail: number;
  /** Queries left unanswered (names set `silent`). */
  unanswered: number;
  /** Packets that could not be parsed as a query. */
  malformed: number;
}

export interface DnsServer {
  readonly host: string;
  readonly port: number;
  /** 'host:port', the form resolver.setServers() takes. */
  readonly address: string;
  stats(): DnsServerStats;
  /** Replaces the whole zone, as a provider changing its records: answers from now on come from it. */
  setRecords(records: Record<string, DnsRecords>): void;
  close(): Promise<void>;
}

const classIn = 1;
const classAny = 255;

export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const defaultTtl = options.ttlSeconds ?? 300;
  let zone = compileZone(options.records, defaultTtl);
  const stats: DnsServerStats = { queries: 0, answered: 0, nxdomain: 0, servfail: 0, unanswered: 0, malformed: 0 };
  const host = options.host ?? '127.0.0.1';

  const respond = (packet: Buffer, maxBytes?: number): Buffer | undefined => {
    const parsed = parseQuery(packet);
    if (parsed.kind === 'ignore') {
      stats.malformed += 1;
      return undefined;
    }
    stats.queries += 1;
    if (parsed.kind === 'error') {
      stats.malformed += 1;
      return buildResponse({ id: parsed.id }, parsed.code);
    }
    return answer(zone, parsed.question, stats, maxBytes);
  };

  // UDP and TCP on one port number: the OS picks a free UDP port, which a TCP socket (an outgoing
  // connection's ephemeral port) may hold already; with no port asked for, another one is drawn.
  for (let attempt = 1; ; attempt += 1) {
    const socket = createSocket('udp4');
    socket.on('message', (packet: Buffer, peer: RemoteInfo) => {
      const response = respond(packet);
      if (response) socket.send(response, peer.port, peer.address);
    });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(options.port ?? 0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const port = socket.address().port;
    try {
      const tcp = await listenTcp(host, port, (packet) => respond(packet, maxTcpBytes));
      return {
        host,
        port,
        address: `${host}:${port}`,
        stats: () => ({ ...stats }),
        setRecords: (records) => {
          zone = compileZone(records, defaultTtl);
        },
        close: async () => {
          await new Promise<void>((resolve) => socket.close(() => resolve()));
          await tcp.close();
        },
      };
    } catch (error) {
      socket.close();
      const taken = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!taken || options.port !== undefined || attempt >= 20) throw error;
    }
  }
}

/** DNS over TCP on the UDP port: each message framed by a two-byte length (RFC 1035 §4.2.2). */
async function listenTcp(
  host: string,
  port: number,
  respond: (packet: Buffer) => Buffer | undefined,
): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((connection) => {
    sockets.add(connection);
    connection.on('close', () => sockets.delete(connection));
    connection.on('error', () => connection.destroy());
    connection.setTimeout(10_000, () => connection.destroy());
    let pending = Buffer.alloc(0);
    connection.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const packet = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + packet.length);
        const response = respond(packet);
        if (!response) continue;
        const length = Buffer.alloc(2);
        length.writeUInt16BE(response.length, 0);
        connection.write(Buffer.concat([length, response]));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    // A resolver keeps its TCP connection open: closing the server alone would wait for it.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const connection of sockets) connection.destroy();
      }),
  };
}

type CompiledZone = Map<string, Map<number, DnsAnswer[]> | 'servfail' | 'silent'>;

function answer(
  zone: CompiledZone,
  question: DnsQuestion,
  stats: DnsServerStats,
  maxBytes?: number,
): Buffer | undefined {
  const byType = zone.get(question.name);
  if (!byType) {
    stats.nxdomain += 1;
    return buildResponse(question, responseCodes.nameError);
  }
  if (byType === 'servfail') {
    stats.servfail += 1;
    return buildResponse(question, responseCodes.serverFailure);
  }
  if (byType === 'silent') {
    stats.unanswered += 1;
    return undefined;
  }
  stats.answered += 1;
  const inClass = question.class === classIn || question.class === classAny;
  // A known name without records of the asked type is NODATA: NOERROR with an empty answer.
  return buildResponse(question, responseCodes.noError, inClass ? (byType.get(question.type) ?? []) : [], maxBytes);
}

function compileZone(records: Record<string, DnsRecords>, defaultTtl: number): CompiledZone {
  const zone: CompiledZone = new Map();
  for (const [rawName, entry] of Object.entries(records)) {
    const ttl = entry.ttlSeconds ?? defaultTtl;
    const name = rawName.toLowerCase().replace(/\.$/, '');
    if (entry.servfail || entry.silent) {
      zone.set(name, entry.servfail ? 'servfail' : 'silent');
      continue;
    }
    try {
      if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0x7fffffff) throw new RangeError(`bad TTL ${ttl}`);
      const byType = new Map<number, DnsAnswer[]>();
      const add = (type: number, data: Buffer[]) => {
        if (data.length > 0)
          byType.set(
            type,
            data.map((bytes) => ({ type, ttl, data: bytes })),
          );
      };
      add(
        recordTypes.MX,
        (entry.mx ?? []).map((mx) => mxData(mx.priority, mx.exchange)),
      );
      add(recordTypes.A, (entry.a ?? []).map(aData));
      add(recordTypes.AAAA, (entry.aaaa ?? []).map(aaaaData));
      zone.set(name, byType);
    } catch (error) {
      throw new AppError('INPUT_INVALID', `simulator DNS record for "${rawName}": ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return zone;
}
