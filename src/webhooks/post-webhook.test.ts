import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { webhooksSchema } from './config-schema.ts';
import { createDestinationPolicy, type ResolvedAddress } from './destinations.ts';
import { createWebhookPoster } from './post-webhook.ts';

// The destination policy is applied to the address each request connects to: real receivers on
// 127.0.0.1 (allowed here, as an operator would for a local receiver) and 127.0.0.2 (denied, like the
// rest of loopback), names resolved through the resolver seam.

const policy = createDestinationPolicy(webhooksSchema.parse({ allowedNetworks: ['127.0.0.1/32'] }));
const arrivals: string[] = [];
let allowedReceiver: Server;
let deniedReceiver: Server;
let port = 0;

function listen(host: string, listenPort: number): Promise<Server> {
  const server = createServer((request, response) => {
    arrivals.push(`${host} ${request.url}`);
    request.resume();
    request.on('end', () => response.writeHead(204).end());
  });
  return new Promise((resolve) => server.listen(listenPort, host, () => resolve(server)));
}

beforeAll(async () => {
  allowedReceiver = await listen('127.0.0.1', 0);
  port = (allowedReceiver.address() as AddressInfo).port;
  deniedReceiver = await listen('127.0.0.2', port);
});
afterAll(async () => {
  await new Promise((resolve) => allowedReceiver.close(resolve));
  await new Promise((resolve) => deniedReceiver.close(resolve));
});

const request = (url: string) => ({
  url,
  headers: { 'content-type': 'application/json' },
  body: '{}',
  timeoutMs: 5_000,
});
const answers =
  (...sequence: ResolvedAddress[][]) =>
  async () =>
    sequence.shift() ?? [];

it('refuses a name resolving to the cloud metadata address', async () => {
  const post = createWebhookPoster({ policy, resolve: answers([{ address: '169.254.169.254', family: 4 }]) });
  expect(await post(request('http://metadata.test/latest/meta-data/'))).toEqual({
    kind: 'failed',
    error:
      'destination refused: metadata.test resolves only to refused addresses: 169.254.169.254 is in webhooks.deniedNetworks (169.254.0.0/16); add it to webhooks.allowedNetworks to allow it',
  });
});

it('checks the address connected to at each request, so a name rebound to a denied address is refused', async () => {
  arrivals.length = 0;
  const post = createWebhookPoster({
    policy,
    resolve: answers([{ address: '127.0.0.1', family: 4 }], [{ address: '127.0.0.2', family: 4 }]),
  });
  expect(await post(request(`http://crm.test:${port}/first`))).toEqual({ kind: 'answered', status: 204 });
  expect(await post(request(`http://crm.test:${port}/second`))).toMatchObject({
    kind: 'failed',
    error: expect.stringContaining('crm.test resolves only to refused addresses: 127.0.0.2 is in'),
  });
  expect(arrivals).toEqual(['127.0.0.1 /first']);
});

it('connects only to the allowed addresses among those a name resolves to', async () => {
  arrivals.length = 0;
  const post = createWebhookPoster({
    policy,
    resolve: answers([
      { address: '127.0.0.2', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ]),
  });
  expect(await post(request(`http://crm.test:${port}/mixed`))).toEqual({ kind: 'answered', status: 204 });
  expect(arrivals).toEqual(['127.0.0.1 /mixed']);
});

it('refuses a literal denied address, IPv4-mapped included, without connecting', async () => {
  arrivals.length = 0;
  const post = createWebhookPoster({ policy, resolve: answers() });
  for (const url of [`http://127.0.0.2:${port}/literal`, `http://[::ffff:127.0.0.2]:${port}/mapped`])
    expect(await post(request(url))).toMatchObject({
      kind: 'failed',
      error: expect.stringMatching(
        /^destination refused: (127\.0\.0\.2|::ffff:7f00:2) is in webhooks\.deniedNetworks \(127\.0\.0\.0\/8\)/,
      ),
    });
  expect(arrivals).toEqual([]);
});
