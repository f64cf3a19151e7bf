import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../common/logger.ts';
import { notifyFailure, type FailureNotification } from './notify-webhook.ts';

// The failure notification goes to workflows.webhookUrl and nowhere else: a redirect (the receiver
// moved, or a proxy in front of it) is not followed with the run's error text.

const elsewhere: string[] = [];
let target: Server;
let redirecting: Server;
let url = '';

const listen = (server: Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );

beforeAll(async () => {
  target = createServer((request, response) => {
    elsewhere.push(`${request.method} ${request.url}`);
    request.resume();
    request.on('end', () => response.writeHead(204).end());
  });
  const targetPort = await listen(target);
  redirecting = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(307, { location: `http://127.0.0.1:${targetPort}/collect` }).end());
  });
  url = `http://127.0.0.1:${await listen(redirecting)}/hooks/herald`;
});
afterAll(async () => {
  await new Promise((resolve) => target.close(resolve));
  await new Promise((resolve) => redirecting.close(resolve));
});

const notification: FailureNotification = {
  event: 'workflow.failed',
  workflow: 'cleanup',
  runId: 3,
  step: 1,
  stepName: 'purge',
  error: 'step 1 (purge): relation "delivery_logs" does not exist',
  nodeId: 'node-a',
  startedAt: '2026-03-07T10:00:00.000Z',
  failedAt: '2026-03-07T10:00:01.000Z',
};

it('does not follow a redirect with the notification', async () => {
  // Before: fetch followed the 307 and POSTed the run's error to the other server.
  expect(await notifyFailure({ url, notification, logger: silentLogger })).toBe(false);
  expect(elsewhere).toEqual([]);
});
