import { createSocket } from 'node:dgram';
import { promises as dns } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../src/sim/dns-server.ts';

let server: DnsServer;
let resolver: dns.Resolver;

beforeAll(async () => {
  server = await startDnsServer({
    ttlSeconds: 60,
    records: {
      'accept.test': { mx: [{ exchange: 'mx.accept.test', priority: 10 }] },
      'backup.test': {
        mx: [
          { exchange: 'mx2.backup.test', priority: 20 },
          { exchange: 'mx1.backup.test', priority: 10 },
        ],
      },
      'mx.accept.test': { a: ['127.0.0.1'], aaaa: ['::1'] },
      'v6.test': { aaaa: ['2001:db8::ff:1'] },
      'nullmx.test': { mx: [{ exchange: '.', priority: 0 }] },
      'Mixed.Case.TEST.': { a: ['127.0.0.2'] },
      // 300 MX records: about 6 KB, truncated over UDP, whole over TCP.
      'crowded.test': {
        mx: Array.from({ length: 300 }, (_, i) => ({ exchange: `mx${i}.crowded.test`, priority: i })),
      },
    },
  });
  resolver = new dns.Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([server.address]);
});

afterAll(async () => {
  await server.close();
});

function rawQuery(packet: Buffer): Promise<Buffer | null> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    socket.once('message', (reply) => {
      socket.close();
      resolve(reply);
    });
    // A malformed packet may deserve no answer: a proper query sent right after proves the server
    // is alive, and its answer arriving first means the bad one was ignored.
    socket.send(packet, server.port, server.host, () => {
      const probe = Buffer.from('beef01000001000000000000026d780661636365707404746573740000010001', 'hex');
      socket.send(probe, server.port, server.host);
    });
  });
}

describe('simulator DNS server through node:dns Resolver', () => {
  it('answers MX with priorities and TTL', async () => {
    const records = await resolver.resolveMx('backup.test');
    expect(records.sort((a, b) => a.priority - b.priority)).toEqual([
      { exchange: 'mx1.backup.test', priority: 10 },
      { exchange: 'mx2.backup.test', priority: 20 },
    ]);
    expect(await resolver.resolveMx('ACCEPT.test')).toEqual([{ exchange: 'mx.accept.test', priority: 10 }]);
  });

  it('answers A and AAAA with the configured TTL', async () => {
    expect(await resolver.resolve4('mx.accept.test', { ttl: true })).toEqual([{ address: '127.0.0.1', ttl: 60 }]);
    expect(await resolver.resolve6('mx.accept.test')).toEqual(['::1']);
    expect(await resolver.resolve6('v6.test')).toEqual(['2001:db8::ff:1']);
    expect(await resolver.resolve4('mixed.case.test')).toEqual(['127.0.0.2']);
  });

  it('serves a null MX (RFC 7505)', async () => {
    expect(await resolver.resolveMx('nullmx.test')).toEqual([{ exchange: '', priority: 0 }]);
  });

  it('answers NXDOMAIN for unknown names and NODATA for missing types', async () => {
    await expect(resolver.resolveMx('nowhere.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolveMx('mx.accept.test')).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(resolver.resolve4('accept.test')).rejects.toMatchObject({ code: 'ENODATA' });
  });

  it('ignores or refuses malformed packets without crashing', async () => {
    const before = server.stats().malformed;
    const tooShort = await rawQuery(Buffer.from([1, 2, 3]));
    expect(tooShort!.readUInt16BE(0)).toBe(0xbeef);
    expect(tooShort!.readUInt16BE(2) & 0xf).toBe(0);
    expect(tooShort!.readUInt16BE(6)).toBe(1);
    // Header says one question, but the name's label runs off the end of the packet.
    const runaway = await rawQuery(Buffer.from('123401000001000000000000' + '3f6162', 'hex'));
    expect(runaway!.readUInt16BE(0)).toBe(0x1234);
    expect(runaway!.readUInt16BE(2) & 0xf).toBe(1);
    // A compression pointer that points at itself.
    const loop = await rawQuery(Buffer.from('12350100000100000000000' + '0c00c00010001', 'hex'));
    expect(loop!.readUInt16BE(2) & 0xf).toBe(1);
    expect(server.stats().malformed).toBe(before + 3);
    expect(await resolver.resolveMx('accept.test')).toHaveLength(1);
  });

  it('rejects records that are not addresses when starting', async () => {
    await expect(startDnsServer({ records: { 'x.test': { a: ['not-an-ip'] } } })).rejects.toMatchObject({
      code: 'INPUT_INVALID',
    });
  });

  it('serves a per-name TTL, a zone replaced while it runs, and silence', async () => {
    const changing = await startDnsServer({
      ttlSeconds: 60,
      records: { 'a.test': { a: ['192.0.2.1'], ttlSeconds: 5 } },
    });
    try {
      const client = new dns.Resolver({ timeout: 1000, tries: 1 });
      client.setServers([changing.address]);
      expect(await client.resolve4('a.test', { ttl: true })).toEqual([{ address: '192.0.2.1', ttl: 5 }]);
      changing.setRecords({ 'a.test': { a: ['192.0.2.2'] }, 'b.test': { servfail: true } });
      expect(await client.resolve4('a.test', { ttl: true })).toEqual([{ address: '192.0.2.2', ttl: 60 }]);
      await expect(client.resolve4('b.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
      changing.setRecords({ 'c.test': { silent: true } });
      const silentClient = new dns.Resolver({ timeout: 50, tries: 1 });
      silentClient.setServers([changing.address]);
      await expect(silentClient.resolve4('c.test')).rejects.toMatchObject({ code: 'ETIMEOUT' });
      expect(changing.stats().unanswered).toBe(1);
      expect(() => changing.setRecords({ 'a.test': { a: ['192.0.2.1'], ttlSeconds: -1 } })).toThrow(/bad TTL -1/);
    } finally {
      await changing.close();
    }
  });
});

describe('simulator DNS server and answers over 512 bytes', () => {
  it('flags them truncated over UDP and gives them whole over TCP, where the resolver asks again', async () => {
    const records = await resolver.resolveMx('crowded.test');
    expect(records).toHaveLength(300);
    expect(records.find((record) => record.priority === 299)?.exchange).toBe('mx299.crowded.test');
  });
});
