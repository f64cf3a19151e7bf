import { connect, type Socket } from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { afterEach, describe, expect, it } from 'vitest';
import type { InboundMessage } from '../src/bounce/inbound-processor.ts';
import {
  startInboundServer,
  type InboundRefusal,
  type InboundServer,
  type InboundServerOptions,
} from '../src/bounce/inbound-server.ts';
import { createVerpSigner } from '../src/bounce/verp.ts';
import { manualClock, systemClock } from '../src/common/clock.ts';

// One client must not lock the inbound role out for everyone: it floods or trickles from one
// loopback address (127.0.0.2) while a legitimate sender on another (127.0.0.3) is still served.

const bounceDomain = 'bounces.brand.test';
const signer = createVerpSigner({
  keys: [{ id: 'k', secret: 'limits-test-secret-0123456789', createdAt: 0 }],
  graceMs: 0,
});

let server: InboundServer | undefined;
const opened: Socket[] = [];
afterEach(async () => {
  for (const socket of opened.splice(0)) socket.destroy();
  await server?.close();
  server = undefined;
});

async function start(
  overrides: Partial<InboundServerOptions> = {},
): Promise<{ port: number; received: InboundMessage[]; refusals: Record<string, number> }> {
  const received: InboundMessage[] = [];
  // What the operator sees of each refusal (herald_inbound_refusals_total{reason}).
  const refusals: Partial<Record<InboundRefusal, number>> = {};
  server = await startInboundServer({
    host: '127.0.0.1',
    port: 0,
    policy: { bounceDomain, verpPrefix: 'bounce', verp: signer, feedbackAddress: '' },
    maxMessageBytes: 64 * 1024,
    maxBufferedBytes: 1024 * 1024,
    maxClients: 20,
    maxConnectionsPerClient: 3,
    sessionTimeoutMs: 60_000,
    maxCommandsWithoutMessage: 30,
    messagesPerMinutePerClient: 1_000,
    keepOfOversized: 1_024,
    clock: systemClock,
    async handle(message) {
      received.push(message);
      return { outcome: 'hard', logId: 1, logFailed: true, category: 'userunknown' };
    },
    onRefusal(reason) {
      refusals[reason] = (refusals[reason] ?? 0) + 1;
    },
    ...overrides,
  });
  return { port: server.address.port, received, refusals };
}

/** A raw TCP client from `localAddress`; `until` resolves on the first line matching a pattern. */
function rawClient(port: number, localAddress: string) {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  opened.push(socket);
  let text = '';
  let closed = false;
  const waiters: Array<() => void> = [];
  socket.on('data', (chunk) => {
    text += chunk.toString('latin1');
    for (const waiter of waiters.splice(0)) waiter();
  });
  socket.on('error', () => {});
  const closedPromise = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.once('close', () => {
    closed = true;
    for (const waiter of waiters.splice(0)) waiter();
  });
  return {
    socket,
    closed: closedPromise,
    get text() {
      return text;
    },
    until(pattern: RegExp): Promise<string> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(text);
          if (match) resolve(match[0]);
          else if (closed) reject(new Error(`closed before ${pattern}; got ${JSON.stringify(text)}`));
          else waiters.push(check);
        };
        check();
      });
    },
  };
}

/** A full SMTP transaction from `localAddress`; refusals are values. */
async function sendFrom(port: number, localAddress: string): Promise<{ accepted: boolean; error?: string }> {
  const connection = new SMTPConnection({
    host: '127.0.0.1',
    port,
    localAddress,
    ignoreTLS: true,
    connectionTimeout: 5_000,
    socketTimeout: 10_000,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.connect(() => resolve());
    });
    return await new Promise((resolve) => {
      connection.send(
        { from: '', to: [signer.address(7, bounceDomain)] },
        'From: MAILER-DAEMON@x.test\r\nSubject: Undelivered\r\n\r\nbounce\r\n',
        (error) => resolve(error ? { accepted: false, error: error.message } : { accepted: true }),
      );
    });
  } catch (error) {
    return { accepted: false, error: (error as Error).message };
  } finally {
    connection.close();
  }
}

describe('inbound SMTP: one client cannot lock others out', () => {
  it('a client holding 60 idle connections gets at most its cap; another address is still served', async () => {
    const { port, received, refusals } = await start();
    const flood = Array.from({ length: 60 }, () => rawClient(port, '127.0.0.2'));
    // Every flooding connection is either greeted (within the cap) or refused with 421 and closed.
    const outcomes = await Promise.all(flood.map((c) => c.until(/^(220|421)[^\n]*\n/m)));
    const greeted = outcomes.filter((line) => line.startsWith('220')).length;
    expect(greeted).toBeLessThanOrEqual(3);
    expect(outcomes.filter((line) => line.includes('Too many connections from your address')).length).toBe(
      60 - greeted,
    );
    const second = await sendFrom(port, '127.0.0.3');
    expect(second).toEqual({ accepted: true });
    const third = await sendFrom(port, '127.0.0.4');
    expect(third).toEqual({ accepted: true });
    expect(received.map((m) => m.remoteAddress)).toEqual(['127.0.0.3', '127.0.0.4']);
    expect(refusals).toEqual({ connections_per_client: 60 - greeted });
  });

  it('past maxClients every client is answered 421 at once, counted, and served once a slot is free', async () => {
    const { port, refusals } = await start({ maxClients: 4 });
    const held = ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.4'].map((address) => rawClient(port, address));
    await Promise.all(held.map((c) => c.until(/^220 /m)));
    const late = rawClient(port, '127.0.0.5');
    await late.closed;
    expect(late.text).toMatch(/^421 4\.7\.0 Too many connected clients/m);
    held[0]!.socket.destroy();
    await held[0]!.closed;
    expect(await sendFrom(port, '127.0.0.5')).toEqual({ accepted: true });
    expect(refusals).toEqual({ max_clients: 1 });
  });

  it('a session trickling commands is closed at its deadline; another address is served meanwhile', async () => {
    const { port, refusals } = await start({ sessionTimeoutMs: 400, maxCommandsWithoutMessage: 10_000 });
    const slow = rawClient(port, '127.0.0.2');
    await slow.until(/^220 /m);
    // A command every 20 ms keeps resetting the idle timeout; only the session deadline ends it.
    const trickle = setInterval(() => {
      if (!slow.socket.destroyed) slow.socket.write('NOOP\r\n');
    }, 20);
    try {
      expect(await sendFrom(port, '127.0.0.3')).toEqual({ accepted: true });
      await slow.closed;
    } finally {
      clearInterval(trickle);
    }
    expect(slow.text).toContain('421 4.4.2 Session time limit reached');
    expect(refusals).toEqual({ session_time_limit: 1 });
  });

  it('a session sending commands without a message is closed after the cap; a message resets it', async () => {
    const { port, refusals } = await start({ maxCommandsWithoutMessage: 30 });
    const noisy = rawClient(port, '127.0.0.2');
    await noisy.until(/^220 /m);
    noisy.socket.write('EHLO noisy.test\r\n');
    for (let i = 0; i < 100; i++) noisy.socket.write(i % 2 ? 'NOOP\r\n' : 'RSET\r\n');
    await noisy.closed;
    expect(noisy.text).toContain('421 4.7.0 Too many commands without a message');
    expect(noisy.text.match(/^250 /gm)!.length).toBeLessThanOrEqual(31);

    // 20 commands, a message, 20 more: progress resets the count.
    const busy = rawClient(port, '127.0.0.3');
    await busy.until(/^220 /m);
    busy.socket.write('EHLO busy.test\r\n');
    for (let i = 0; i < 20; i++) busy.socket.write('NOOP\r\n');
    busy.socket.write(`MAIL FROM:<>\r\nRCPT TO:<${signer.address(7, bounceDomain)}>\r\nDATA\r\n`);
    await busy.until(/^354 /m);
    busy.socket.write('Subject: x\r\n\r\nbounce\r\n.\r\n');
    await busy.until(/^250 2\.0\.0 Accepted/m);
    for (let i = 0; i < 20; i++) busy.socket.write('NOOP\r\n');
    busy.socket.write('QUIT\r\n');
    await busy.until(/^221 /m);
    expect(busy.text).not.toContain('421');
    expect(refusals).toEqual({ commands_without_message: 1 });
  });

  it('holds at most maxBufferedBytes of content for all sessions: a message past it is answered 452, and served once room is back', async () => {
    // The first message is held by its processing (its bytes count until it is answered).
    let processingStarted!: () => void;
    const started = new Promise<void>((resolve) => {
      processingStarted = resolve;
    });
    let finishProcessing!: () => void;
    const processing = new Promise<void>((resolve) => {
      finishProcessing = resolve;
    });
    let calls = 0;
    const { port, refusals } = await start({
      maxBufferedBytes: 48 * 1024,
      async handle() {
        if (++calls === 1) {
          processingStarted();
          await processing;
        }
        return { outcome: 'hard', logId: 1, logFailed: true, category: 'userunknown' };
      },
    });
    const body = `Subject: x\r\n\r\n${'b'.repeat(76).concat('\r\n').repeat(500)}.\r\n`; // ~39 KiB
    // `ready`: the 354 this transaction waits for (a client's second one comes after its 452).
    const message = async (client: ReturnType<typeof rawClient>, ready: RegExp) => {
      client.socket.write(`MAIL FROM:<>\r\nRCPT TO:<${signer.address(7, bounceDomain)}>\r\nDATA\r\n`);
      await client.until(ready);
      client.socket.write(body);
    };
    const first = rawClient(port, '127.0.0.2');
    await first.until(/^220 /m);
    first.socket.write('EHLO first.test\r\n');
    await message(first, /^354 /m);
    await started;

    const second = rawClient(port, '127.0.0.3');
    await second.until(/^220 /m);
    second.socket.write('EHLO second.test\r\n');
    await message(second, /^354 /m);
    await second.until(/^452 4\.3\.1 /m);

    finishProcessing();
    await first.until(/^250 2\.0\.0 Accepted/m);
    // The first message's bytes are released: the same message from the second client now goes in.
    await message(second, /^452 4\.3\.1 [\s\S]*^354 /m);
    await second.until(/^250 2\.0\.0 Accepted/m);
    expect(calls).toBe(2);
    expect(refusals).toEqual({ buffered_bytes: 1 });
  });

  it("one client holds at most one message's worth of the shared buffer: its parallel sessions cannot lock others out", async () => {
    // The attacker's messages are held in processing, so their bytes stay counted.
    let release!: () => void;
    const processing = new Promise<void>((resolve) => {
      release = resolve;
    });
    let onHandle: (() => void) | undefined;
    const { port, refusals } = await start({
      maxBufferedBytes: 100 * 1024,
      async handle(message) {
        onHandle?.();
        if (message.remoteAddress === '127.0.0.2') await processing;
        return { outcome: 'hard', logId: 1, logFailed: true, category: 'userunknown' };
      },
    });
    const body = `Subject: x\r\n\r\n${'b'.repeat(76).concat('\r\n').repeat(500)}.\r\n`; // ~39 KiB
    /** Sends one message; resolves once it is being processed or was answered 452. */
    const send = async (address: string) => {
      const client = rawClient(port, address);
      await client.until(/^220 /m);
      client.socket.write(`EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<${signer.address(7, bounceDomain)}>\r\nDATA\r\n`);
      await client.until(/^354 /m);
      const handled = new Promise<string>((resolve) => {
        onHandle = () => resolve('processing');
      });
      client.socket.write(body);
      return Promise.race([handled, client.until(/^452 4\.3\.1 .*$/m)]);
    };
    // Before: three sessions of 127.0.0.2 held 78 KiB of the 100 KiB, and 127.0.0.3 got 452.
    const attacker = [];
    for (let i = 0; i < 3; i++) attacker.push(await send('127.0.0.2'));
    expect(attacker[0]).toBe('processing');
    expect(attacker.slice(1)).toEqual([expect.stringMatching(/^452 4\.3\.1 /), expect.stringMatching(/^452 4\.3\.1 /)]);
    expect(await send('127.0.0.3')).toBe('processing');
    release();
    expect(refusals).toEqual({ client_buffered_bytes: 2 });
  });

  it('counts refused recipients: relay attempts, and forged or unsigned VERP addresses of ours apart', async () => {
    const { port, received, refusals } = await start();
    const client = rawClient(port, '127.0.0.2');
    await client.until(/^220 /m);
    const forged = signer.address(7, bounceDomain).replace(/-[0-9a-f]+@/, '-00000000000000000000@');
    client.socket.write(
      `EHLO probe.test\r\nMAIL FROM:<>\r\nRCPT TO:<victim@gmail.test>\r\nRCPT TO:<bounce+7@${bounceDomain}>\r\nRCPT TO:<${forged}>\r\nQUIT\r\n`,
    );
    await client.until(/^221 /m);
    // The same answer for each: nothing tells the prober which guess was closer.
    expect(client.text.match(/^550 5\.7\.1 Relaying denied/gm)).toHaveLength(3);
    expect(received).toHaveLength(0);
    expect(refusals).toEqual({ relay: 1, unverified_verp: 2 });
  });

  it('counts at most maxTrackedClients senders a minute: more addresses neither grow it nor free a throttled one', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1, 10, 0, 0));
    const { port, received, refusals } = await start({ clock, messagesPerMinutePerClient: 1, maxTrackedClients: 20 });
    expect(await sendFrom(port, '127.0.0.2')).toEqual({ accepted: true });
    expect((await sendFrom(port, '127.0.0.2')).error).toMatch(/421 4\.7\.0 Too many messages from your address/);
    // 40 more source addresses in the same minute: 19 are counted, the rest refused for now (4xx,
    // the sender retries); none of them makes the table forget 127.0.0.2.
    const flood = [];
    for (let i = 1; i <= 40; i++) flood.push(await sendFrom(port, `127.0.1.${i}`));
    expect(flood.filter((r) => r.accepted)).toHaveLength(19);
    expect(flood.slice(19).every((r) => /421 4\.7\.0 Too many clients/.test(r.error ?? ''))).toBe(true);
    expect((await sendFrom(port, '127.0.0.2')).error).toMatch(/421 4\.7\.0 Too many messages from your address/);
    // The next minute the expired windows are swept: everyone is served again.
    clock.advance(60_000);
    expect(await sendFrom(port, '127.0.0.2')).toEqual({ accepted: true });
    expect(await sendFrom(port, '127.0.1.40')).toEqual({ accepted: true });
    expect(received).toHaveLength(1 + 19 + 2);
    expect(refusals).toEqual({ messages_per_minute: 2, tracked_clients: 21 });
  });
});
