import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { RawSmtpClient } from '../src/sim/raw-smtp-client.ts';
import { startSmtpSink, type SmtpSink, type SmtpSinkOptions } from '../src/sim/smtp-sink.ts';

const open: SmtpSink[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((sink) => sink.close()));
});

async function sink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const started = await startSmtpSink(options);
  open.push(started);
  return started;
}

function connectClient(target: SmtpSink, extra: Partial<SMTPConnection.Options> = {}): Promise<SMTPConnection> {
  const connection = new SMTPConnection({ host: target.host, port: target.port, ...extra });
  return new Promise((resolve, reject) => {
    connection.once('error', reject);
    connection.connect(() => {
      connection.off('error', reject);
      resolve(connection);
    });
  });
}

function send(connection: SMTPConnection, to: string[], message: string): Promise<SMTPConnection.SentMessageInfo> {
  return new Promise((resolve, reject) => {
    connection.send({ from: 'sender@herald.test', to }, message, (error, info) =>
      error ? reject(error) : resolve(info),
    );
  });
}

function quit(connection: SMTPConnection): Promise<void> {
  return new Promise((resolve) => {
    connection.once('end', () => resolve());
    connection.quit();
  });
}

async function greet(client: RawSmtpClient): Promise<void> {
  const [greeting] = await client.read(1);
  expect(greeting!.code).toBe(220);
  expect((await client.command('EHLO client.test')).code).toBe(250);
}

const message = 'From: sender@herald.test\r\nTo: a@accept.test\r\nSubject: hello\r\n\r\nBody line\r\n.leading dot\r\n';

describe('smtp sink with a real client', () => {
  it('accepts a message, advertises the extensions and counts it', async () => {
    const target = await sink({ keepMessages: true });
    const connection = await connectClient(target);
    const info = await send(connection, ['a@accept.test', 'B@Accept.test'], message);
    expect(info.accepted).toEqual(['a@accept.test', 'B@Accept.test']);
    await quit(connection);
    const client = await RawSmtpClient.connect(target.port);
    await client.read(1);
    const ehlo = await client.command('EHLO client.test');
    expect(ehlo.lines.map((line) => line.slice(4))).toEqual(
      expect.arrayContaining(['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', `SIZE ${50 * 1024 * 1024}`]),
    );
    expect(ehlo.lines.join()).not.toContain('STARTTLS');
    client.destroy();
    await client.closed();
    await target.whenIdle();
    const stats = target.stats();
    expect(stats.messagesAccepted).toBe(1);
    expect(stats.recipientsAccepted).toBe(2);
    expect(stats.messagesPerConnection).toEqual({ '1': 1, '0': 1 });
    expect(target.acceptedCount('b@accept.test')).toBe(1);
    expect(target.keptMessages[0]!.data.toString()).toBe(message);
    expect(target.keptMessages[0]!.recipients).toEqual(['a@accept.test', 'b@accept.test']);
  });

  it('refuses recipients by declared local-part rules and counts replies by code', async () => {
    const target = await sink({
      behaviour: {
        rcptRules: [
          { localPartPrefix: 'unknown', reply: { code: 550, enhanced: '5.1.1', text: 'No such user' } },
          { localPartPrefix: 'full', reply: { code: 452, enhanced: '4.2.2', text: 'Mailbox full' } },
        ],
      },
    });
    const connection = await connectClient(target);
    const info = await send(connection, ['unknown1@u.test', 'full2@u.test', 'ok@u.test'], message);
    expect(info.accepted).toEqual(['ok@u.test']);
    expect(info.rejectedErrors?.map((error) => error.response)).toEqual([
      '550 5.1.1 No such user',
      '452 4.2.2 Mailbox full',
    ]);
    await quit(connection);
    expect(target.stats().rcptRepliesByCode).toEqual({ '250': 1, '550': 1, '452': 1 });
    expect(target.stats().recipientsRefused).toBe(2);
    expect(target.acceptedCount('unknown1@u.test')).toBe(0);
  });

  it('upgrades to TLS with STARTTLS and forgets the earlier EHLO', async () => {
    const target = await sink({ tls: true, keepMessages: true });
    const connection = await connectClient(target, { requireTLS: true, tls: { rejectUnauthorized: false } });
    expect(connection.secure).toBe(true);
    await send(connection, ['tls@accept.test'], message);
    await quit(connection);
    expect(target.keptMessages).toHaveLength(1);
    const client = await RawSmtpClient.connect(target.port);
    await greet(client);
    client.send('STARTTLS\r\nMAIL FROM:<smuggled@x.test>\r\n');
    const [ready] = await client.read(1);
    expect(ready!.text).toBe('2.0.0 Ready to start TLS');
    client.destroy();
    await client.closed();
    await target.whenIdle();
  });
});

describe('smtp sink protocol handling', () => {
  it('answers a pipelined batch of several transactions in order', async () => {
    const target = await sink({ keepMessages: true });
    const client = await RawSmtpClient.connect(target.port);
    await greet(client);
    client.send('MAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n');
    expect((await client.read(4)).map((reply) => reply.code)).toEqual([250, 250, 250, 354]);
    client.send('Subject: one\r\n\r\n..dot\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n');
    expect((await client.read(4)).map((reply) => reply.code)).toEqual([250, 250, 250, 354]);
    client.send('.\r\nRSET\r\nNOOP\r\nBOGUS\r\nDATA\r\nQUIT\r\n');
    expect((await client.read(6)).map((reply) => reply.code)).toEqual([250, 250, 250, 500, 503, 221]);
    await client.closed();
    expect(target.keptMessages.map((kept) => kept.data.toString())).toEqual(['Subject: one\r\n\r\n.dot\r\n', '']);
    expect(target.keptMessages[1]!.sender).toBe('');
    expect(target.stats().maxMessagesPerConnection).toBe(2);
  });

  it('finds the end of data when the message arrives one byte per write', async () => {
    const wire = 'Subject: split\r\n\r\nline\r\n..stuffed\r\n.\r\n';
    const target = await sink({ keepMessages: true });
    const client = await RawSmtpClient.connect(target.port);
    await greet(client);
    client.send('MAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\nDATA\r\n');
    await client.read(3);
    for (const byte of wire) {
      await new Promise<void>((resolve) => client.socket.write(byte, () => resolve()));
    }
    const [done] = await client.read(1);
    expect(done!.code).toBe(250);
    expect(target.keptMessages[0]!.data.toString()).toBe('Subject: split\r\n\r\nline\r\n.stuffed\r\n');
    client.destroy();
  });

  it('rejects bad sequences and over-long lines', async () => {
    const target = await sink();
    const client = await RawSmtpClient.connect(target.port);
    await client.read(1);
    expect((await client.command('MAIL FROM:<s@x.test>')).code).toBe(503);
    expect((await client.command('EHLO')).code).toBe(501);
    expect((await client.command('HELO client.test')).code).toBe(250);
    expect((await client.command('RCPT TO:<a@x.test>')).code).toBe(503);
    expect((await client.command('MAIL TO:<s@x.test>')).code).toBe(501);
    expect((await client.command('MAIL FROM:<s@x.test> SIZE=999999999999')).code).toBe(552);
    expect((await client.command('MAIL FROM:<s@x.test> SIZE=1000 BODY=8BITMIME')).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(554);
    expect((await client.command('STARTTLS')).code).toBe(502);
    client.send(`NOOP ${'x'.repeat(5000)}`);
    const [tooLong] = await client.read(1);
    expect(tooLong!.code).toBe(500);
    await client.closed();
  });
});
