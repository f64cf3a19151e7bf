import { connect } from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { RawSmtpClient } from '../src/sim/raw-smtp-client.ts';
import { startSmtpSink, type SmtpSink, type SmtpSinkOptions } from '../src/sim/smtp-sink.ts';

const open: SmtpSink[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((sink) => sink.close()));
});

async function sink(options: SmtpSinkOptions): Promise<SmtpSink> {
  const started = await startSmtpSink(options);
  open.push(started);
  return started;
}

async function session(target: SmtpSink): Promise<RawSmtpClient> {
  const client = await RawSmtpClient.connect(target.port);
  await client.read(1);
  await client.command('EHLO client.test');
  return client;
}

/** One transaction; returns the codes of MAIL, RCPT and (when reached) the end of DATA. */
async function transaction(client: RawSmtpClient, from: string, to: string): Promise<number[]> {
  client.send(`MAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
  const replies = await client.read(3).catch(() => null);
  if (!replies) return [421];
  const codes = replies.map((reply) => reply.code);
  if (codes[2] !== 354) return codes;
  client.send('Subject: x\r\n\r\nhi\r\n.\r\n');
  const [done] = await client.read(1);
  return [...codes, done!.code];
}

function attempt(target: SmtpSink, options: Partial<SMTPConnection.Options>): Promise<Error | null> {
  const connection = new SMTPConnection({ host: target.host, port: target.port, ...options });
  return new Promise((resolve) => {
    connection.once('error', (error) => {
      connection.close();
      resolve(error);
    });
    connection.connect(() => {
      connection.send({ from: 's@x.test', to: ['a@x.test'] }, 'Subject: x\r\n\r\nhi\r\n', (error) => {
        connection.close();
        resolve(error ?? null);
      });
    });
  });
}

describe('scripted sink behaviours', () => {
  it('rate-limits transactions per minute with 421 4.7.0 and closes, using the injected clock', async () => {
    const clock = manualClock();
    const target = await sink({ clock, behaviour: { rateLimitPerMinute: 2 } });
    const client = await session(target);
    expect(await transaction(client, 's@x.test', 'a@x.test')).toEqual([250, 250, 354, 250]);
    expect(await transaction(client, 's@x.test', 'b@x.test')).toEqual([250, 250, 354, 250]);
    client.send('MAIL FROM:<s@x.test>\r\nRCPT TO:<c@x.test>\r\n');
    const [refused] = await client.read(1);
    expect(`${refused!.code} ${refused!.text}`).toBe('421 4.7.0 Too many messages, slow down');
    await client.closed();
    clock.advance(60_000);
    const next = await session(target);
    expect(await transaction(next, 's@x.test', 'c@x.test')).toEqual([250, 250, 354, 250]);
    next.destroy();
    expect(target.stats().rateLimited).toBe(1);
    expect(target.stats().messagesAccepted).toBe(3);
  });

  it('greylists the first attempt per (sender, recipient) and accepts after the delay', async () => {
    const clock = manualClock();
    const target = await sink({ clock, behaviour: { greylist: { delayMs: 300_000 } } });
    const client = await session(target);
    expect(await transaction(client, 's@x.test', 'a@x.test')).toEqual([250, 451, 554]);
    client.send('RSET\r\n');
    await client.read(1);
    clock.advance(60_000);
    expect(await transaction(client, 's@x.test', 'a@x.test')).toEqual([250, 451, 554]);
    await client.command('RSET');
    expect(await transaction(client, 'other@x.test', 'a@x.test')).toEqual([250, 451, 554]);
    await client.command('RSET');
    clock.advance(240_000);
    expect(await transaction(client, 's@x.test', 'a@x.test')).toEqual([250, 250, 354, 250]);
    client.destroy();
    expect(target.stats().rcptRepliesByCode).toEqual({ '451': 3, '250': 1 });
  });

  it('greylists with a zero delay: the second attempt is accepted', async () => {
    const target = await sink({ behaviour: { greylist: { delayMs: 0 } } });
    const client = await session(target);
    expect(await transaction(client, 's@x.test', 'a@x.test')).toEqual([250, 451, 554]);
    await client.command('RSET');
    expect(await transaction(client, 's@x.test', 'a@x.test')).toEqual([250, 250, 354, 250]);
    client.destroy();
  });

  it('answers 421 at greeting and closes', async () => {
    const target = await sink({
      behaviour: { greeting: { code: 421, enhanced: '4.3.2', text: 'Service not available', close: true } },
    });
    const error = await attempt(target, {});
    expect(error?.message).toContain('421 4.3.2 Service not available');
    expect(target.stats().messagesAccepted).toBe(0);
  });

  it('drops the connection during DATA', async () => {
    const target = await sink({ behaviour: { dropDuringData: true } });
    const error = await attempt(target, {});
    expect(error).not.toBeNull();
    await target.whenIdle();
    expect(target.stats().droppedDuringData).toBe(1);
    expect(target.stats().messagesAccepted).toBe(0);
  });

  it('stalls before the greeting past the client greeting timeout', async () => {
    const target = await sink({ behaviour: { stall: 'before-greeting' } });
    const error = (await attempt(target, { greetingTimeout: 100 })) as (Error & { code?: string }) | null;
    expect(error?.code).toBe('ETIMEDOUT');
    expect(target.stats().connections).toBe(1);
  });

  it('stalls after DATA past the client socket timeout and accepts nothing', async () => {
    const target = await sink({ behaviour: { stall: 'after-data' } });
    const error = (await attempt(target, { socketTimeout: 150 })) as (Error & { code?: string }) | null;
    expect(error?.code).toBe('ETIMEDOUT');
    expect(target.stats().messagesAccepted).toBe(0);
    expect(target.stats().dataBytes).toBeGreaterThan(0);
  });

  it('lets a custom decision see the sender, the time and the sink state', async () => {
    const clock = manualClock(1_000);
    const seen: string[] = [];
    const target = await sink({
      clock,
      behaviour: {
        decideRcpt: ({ sender, address, now, state }) => {
          seen.push(`${sender}>${address}@${now}#${state.acceptedCount(address)}`);
          return state.acceptedCount(address) > 0 ? { code: 550, enhanced: '5.7.1', text: 'Seen you' } : undefined;
        },
      },
    });
    const client = await session(target);
    expect(await transaction(client, 's@x.test', 'a@x.test')).toEqual([250, 250, 354, 250]);
    expect(await transaction(client, 's@x.test', 'A@x.test')).toEqual([250, 550, 554]);
    client.destroy();
    expect(seen).toEqual(['s@x.test>a@x.test@1000#0', 's@x.test>A@x.test@1000#1']);
  });
});

describe('sink counters and lifecycle', () => {
  it('counts concurrent sessions across parallel connections', async () => {
    const target = await sink({});
    const clients = await Promise.all([1, 2, 3, 4, 5].map(() => session(target)));
    expect(target.stats().openSessions).toBe(5);
    await Promise.all(clients.map((client) => client.command('QUIT')));
    await target.whenIdle();
    const later = await session(target);
    later.destroy();
    await target.whenIdle();
    const stats = target.stats();
    expect(stats.maxConcurrentSessions).toBe(5);
    expect(stats.connections).toBe(6);
    expect(stats.openSessions).toBe(0);
  });

  it('closes idle sessions, including ones upgraded to TLS', async () => {
    const target = await sink({ idleTimeoutMs: 50, tls: true });
    const idle = await RawSmtpClient.connect(target.port);
    await idle.closed();
    const connection = new SMTPConnection({ host: target.host, port: target.port, tls: { rejectUnauthorized: false } });
    const ended = new Promise<void>((resolve) => connection.once('end', () => resolve()));
    connection.on('error', () => undefined);
    await new Promise<void>((resolve) => connection.connect(() => resolve()));
    expect(connection.secure).toBe(true);
    await ended;
    await target.whenIdle();
    expect(target.stats().connections).toBe(2);
  });

  it('does not track recipients when asked not to', async () => {
    const target = await sink({ trackRecipients: false });
    const client = await session(target);
    expect(await transaction(client, 's@x.test', 'a@x.test')).toEqual([250, 250, 354, 250]);
    client.destroy();
    expect(target.acceptedRecipients).toBeNull();
    expect(target.acceptedCount('a@x.test')).toBe(0);
  });

  it('close() destroys open and stalled sockets and stops listening', async () => {
    const before = process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP')).length;
    const target = await startSmtpSink({ behaviour: { stall: 'before-greeting' } });
    const clients = await Promise.all([1, 2, 3].map(() => RawSmtpClient.connect(target.port)));
    await target.close();
    await Promise.all(clients.map((client) => client.closed()));
    expect(target.stats().openSessions).toBe(0);
    const refused = await new Promise<string>((resolve) => {
      const socket = connect({ port: target.port, host: '127.0.0.1' });
      socket.once('error', (error: Error & { code?: string }) => resolve(error.code ?? ''));
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
    expect(process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP')).length).toBeLessThanOrEqual(
      before,
    );
  });
});
