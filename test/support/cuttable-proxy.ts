import { createServer, type Server, Socket } from 'node:net';
import { createTestDatabase, type TestDatabase } from './databases.ts';

// A TCP proxy between Herald and a server it depends on (PostgreSQL, Redis), cut on demand by the
// fault tests: `blackhole()` keeps every socket open and lets nothing through either way (a network
// partition where packets vanish: no reset, no error, only silence; a new connection is accepted and
// then hears nothing), `resume()` lets the bytes held meanwhile through, as TCP retransmission does
// when a partition heals, and `refuse()` resets every connection and refuses new ones.

export interface CuttableProxy {
  /** host:port to point Herald at. */
  host: string;
  port: number;
  blackhole(): void;
  resume(): void;
  refuse(): void;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

export async function startCuttableProxy(target: { host: string; port: number }): Promise<CuttableProxy> {
  let mode: 'forward' | 'blackhole' | 'refuse' = 'forward';
  let accepted = 0;
  const pairs = new Set<[Socket, Socket]>();
  // Bytes that arrived while blackholed, per connection in arrival order, written on resume().
  const holds = new Set<Array<[Socket, Buffer]>>();
  const server: Server = createServer((client) => {
    accepted++;
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    const upstream = new Socket();
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const held: Array<[Socket, Buffer]> = [];
    holds.add(held);
    const forget = () => {
      pairs.delete(pair);
      holds.delete(held);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (mode === 'blackhole' || held.length > 0) held.push([to, chunk]);
      else to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    upstream.connect(target.port, target.host);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    host: '127.0.0.1',
    port: address.port,
    blackhole: () => {
      mode = 'blackhole';
    },
    resume: () => {
      mode = 'forward';
      for (const held of holds) for (const [to, chunk] of held.splice(0)) to.write(chunk);
    },
    refuse: () => {
      mode = 'refuse';
      for (const [client, upstream] of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
    },
    accepted: () => accepted,
    close: async () => {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A scratch PostgreSQL database and a proxy in front of it; `url` reaches the database through the proxy. */
export async function postgresBehindProxy(): Promise<{ database: TestDatabase; proxy: CuttableProxy; url: string }> {
  const database = await createTestDatabase('postgres');
  const target = new URL(database.url);
  const proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const proxied = new URL(database.url);
  proxied.host = `${proxy.host}:${proxy.port}`;
  return { database, proxy, url: proxied.toString() };
}
