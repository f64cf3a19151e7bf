// A tiny authoritative DNS server over UDP for the simulated `.test` zone, so the MTA resolves MX
// hosts through a real resolver (node's dns.promises.Resolver with setServers) instead of a stub.
import { createSocket, type RemoteInfo } from 'node:dgram';
import { AppError } from '../common/errors.ts';
import {
  aaaaData,
  aData,
  buildResponse,
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
  /** Packets that could not be parsed as a query. */
  malformed: number;
}

export interface DnsServer {
  readonly host: string;
  readonly port: number;
  /** 'host:port', the form resolver.setServers() takes. */
  readonly address: string;
  stats(): DnsServerStats;
  close(): Promise<void>;
}

const classIn = 1;
const classAny = 255;

export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const zone = compileZone(options.records, options.ttlSeconds ?? 300);
  const stats: DnsServerStats = { queries: 0, answered: 0, nxdomain: 0, servfail: 0, malformed: 0 };
  const socket = createSocket('udp4');
  const host = options.host ?? '127.0.0.1';

  const respond = (packet: Buffer, peer: RemoteInfo) => {
    const parsed = parseQuery(packet);
    if (parsed.kind === 'ignore') {
      stats.malformed += 1;
      return;
    }
    stats.queries += 1;
    let response: Buffer;
    if (parsed.kind === 'error') {
      stats.malformed += 1;
      response = buildResponse({ id: parsed.id }, parsed.code);
    } else {
      response = answer(zone, parsed.question, stats);
    }
    socket.send(response, peer.port, peer.address);
  };

  socket.on('message', respond);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.port ?? 0, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;
  return {
    host,
    port,
    address: `${host}:${port}`,
    stats: () => ({ ...stats }),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

type CompiledZone = Map<string, Map<number, DnsAnswer[]> | 'servfail'>;

function answer(zone: CompiledZone, question: DnsQuestion, stats: DnsServerStats): Buffer {
  const byType = zone.get(question.name);
  if (!byType) {
    stats.nxdomain += 1;
    return buildResponse(question, responseCodes.nameError);
  }
  if (byType === 'servfail') {
    stats.servfail += 1;
    return buildResponse(question, responseCodes.serverFailure);
  }
  stats.answered += 1;
  const inClass = question.class === classIn || question.class === classAny;
  // A known name without records of the asked type is NODATA: NOERROR with an empty answer.
  return buildResponse(question, responseCodes.noError, inClass ? (byType.get(question.type) ?? []) : []);
}

function compileZone(records: Record<string, DnsRecords>, ttl: number): CompiledZone {
  const zone: CompiledZone = new Map();
  for (const [rawName, entry] of Object.entries(records)) {
    const name = rawName.toLowerCase().replace(/\.$/, '');
    if (entry.servfail) {
      zone.set(name, 'servfail');
      continue;
    }
    try {
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
