// Just enough of RFC 1035 to be an authoritative server for a handful of names: parse one question,
// build an answer with MX / A / AAAA records. Pure functions over Buffers; malformed input is a value.
import { isIPv4, isIPv6 } from 'node:net';

export const recordTypes = { A: 1, MX: 15, AAAA: 28 } as const;
export const responseCodes = { noError: 0, formatError: 1, serverFailure: 2, nameError: 3, notImplemented: 4 } as const;

const headerBytes = 12;
const maxUdpBytes = 512;
export const maxTcpBytes = 65_535;

export interface DnsQuestion {
  id: number;
  /** RD flag as sent, echoed in the answer. */
  recursionDesired: boolean;
  /** Lower-cased, without the trailing dot. */
  name: string;
  type: number;
  class: number;
  /** The question section as received, echoed verbatim (resolvers may randomise letter case, "0x20"). */
  raw: Buffer;
}

export type ParsedQuery =
  | { kind: 'question'; question: DnsQuestion }
  /** Worth a reply with this code (the header was readable). */
  | { kind: 'error'; id: number; code: number }
  /** Not worth any reply: too short to carry an id, or a response rather than a query. */
  | { kind: 'ignore' };

export function parseQuery(packet: Buffer): ParsedQuery {
  if (packet.length < headerBytes) return { kind: 'ignore' };
  const id = packet.readUInt16BE(0);
  const flags = packet.readUInt16BE(2);
  if (flags & 0x8000) return { kind: 'ignore' };
  if ((flags >> 11) & 0xf) return { kind: 'error', id, code: responseCodes.notImplemented };
  if (packet.readUInt16BE(4) !== 1) return { kind: 'error', id, code: responseCodes.formatError };
  const name = readName(packet, headerBytes);
  if (!name || name.end + 4 > packet.length) return { kind: 'error', id, code: responseCodes.formatError };
  return {
    kind: 'question',
    question: {
      id,
      recursionDesired: (flags & 0x0100) !== 0,
      name: name.value,
      type: packet.readUInt16BE(name.end),
      class: packet.readUInt16BE(name.end + 2),
      raw: packet.subarray(headerBytes, name.end + 4),
    },
  };
}

/** Reads a possibly compressed name; null when it runs off the packet, loops, or breaks RFC 1035 limits. */
export function readName(packet: Buffer, offset: number): { value: string; end: number } | null {
  const labels: string[] = [];
  let position = offset;
  let end = -1;
  let length = 0;
  for (let jumps = 0; jumps < 32; ) {
    if (position >= packet.length) return null;
    const size = packet[position]!;
    if (size === 0) {
      return { value: labels.join('.').toLowerCase(), end: end < 0 ? position + 1 : end };
    }
    if ((size & 0xc0) === 0xc0) {
      if (position + 1 >= packet.length) return null;
      if (end < 0) end = position + 2;
      position = ((size & 0x3f) << 8) | packet[position + 1]!;
      jumps += 1;
      continue;
    }
    if (size > 63 || position + 1 + size > packet.length) return null;
    length += size + 1;
    if (length > 255) return null;
    labels.push(packet.toString('latin1', position + 1, position + 1 + size));
    position += 1 + size;
  }
  return null;
}

export interface DnsAnswer {
  type: number;
  ttl: number;
  data: Buffer;
}

/** `maxBytes`: 512 over UDP (RFC 1035 §4.2.1: a bigger answer is cut and flagged TC, the client
 *  asks again over TCP), 65,535 over TCP (§4.2.2). */
export function buildResponse(
  request: { id: number; recursionDesired?: boolean; raw?: Buffer },
  code: number,
  answers: DnsAnswer[] = [],
  maxBytes = maxUdpBytes,
): Buffer {
  const question = request.raw ?? Buffer.alloc(0);
  const records = answers.map((answer) => {
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc000 | headerBytes, 0); // points at the question name
    fixed.writeUInt16BE(answer.type, 2);
    fixed.writeUInt16BE(1, 4); // class IN
    fixed.writeUInt32BE(answer.ttl, 6);
    fixed.writeUInt16BE(answer.data.length, 10);
    return Buffer.concat([fixed, answer.data]);
  });
  const truncated = records.reduce((sum, record) => sum + record.length, headerBytes + question.length) > maxBytes;
  const header = Buffer.alloc(headerBytes);
  header.writeUInt16BE(request.id, 0);
  // QR=1, AA=1 (authoritative), TC when the answers do not fit (RFC 1035 §4.2.1).
  header.writeUInt16BE(0x8400 | (truncated ? 0x0200 : 0) | (request.recursionDesired ? 0x0100 : 0) | code, 2);
  header.writeUInt16BE(question.length > 0 ? 1 : 0, 4);
  header.writeUInt16BE(truncated ? 0 : records.length, 6);
  return Buffer.concat([header, question, ...(truncated ? [] : records)]);
}

export function encodeName(name: string): Buffer {
  const trimmed = name.replace(/\.$/, '');
  if (trimmed === '') return Buffer.from([0]);
  const parts = trimmed.split('.').map((label) => {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length === 0 || bytes.length > 63) throw new RangeError(`bad DNS label in "${name}"`);
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

/** RFC 7505 null MX is `{ exchange: '.', priority: 0 }` (or an empty exchange). */
export function mxData(priority: number, exchange: string): Buffer {
  const preference = Buffer.alloc(2);
  preference.writeUInt16BE(priority, 0);
  return Buffer.concat([preference, encodeName(exchange)]);
}

export function aData(address: string): Buffer {
  if (!isIPv4(address)) throw new RangeError(`not an IPv4 address: "${address}"`);
  return Buffer.from(address.split('.').map(Number));
}

export function aaaaData(address: string): Buffer {
  if (!isIPv6(address) || address.includes('.')) throw new RangeError(`not a plain IPv6 address: "${address}"`);
  const [head = '', tail] = address.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...tailGroups];
  const data = Buffer.alloc(16);
  for (const [index, group] of groups.entries()) data.writeUInt16BE(parseInt(group, 16), index * 2);
  return data;
}
