import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { openSmtpSession, type SmtpConnectOptions, type SmtpSession } from '../src/mta/smtp-client.ts';
import { defaultVerdict } from '../src/bounce/default-verdict.ts';
import { startSmtpSink, type SmtpSink } from '../src/sim/smtp-sink.ts';
import {
  startScriptedSmtpServer,
  type ScriptedSmtpOptions,
  type ScriptedSmtpServer,
} from './support/scripted-smtp-server.ts';
import { waitFor } from './support/wait.ts';

// Herald's SMTP client against real listeners: scripted servers for the protocol's corners
// (pipelining or not, refusals inside a pipelined group, hostile replies) and the simulator's sink
// for STARTTLS and message transparency.

const servers: Array<{ close(): Promise<void> }> = [];
const sessions: SmtpSession[] = [];
afterEach(async () => {
  for (const session of sessions.splice(0)) session.close();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function scripted(options: ScriptedSmtpOptions): Promise<ScriptedSmtpServer> {
  const server = await startScriptedSmtpServer(options);
  servers.push(server);
  return server;
}

function connectOptions(port: number, extra: Partial<SmtpConnectOptions> = {}): SmtpConnectOptions {
  return {
    host: '127.0.0.1',
    port,
    servername: 'mx.scripted.test',
    heloName: 'mta.herald.test',
    opportunisticTls: true,
    timeouts: { connectTimeoutMs: 5_000, commandTimeoutMs: 5_000, dataTimeoutMs: 5_000 },
    ...extra,
  };
}

async function open(port: number, extra: Partial<SmtpConnectOptions> = {}): Promise<SmtpSession> {
  const result = await openSmtpSession(connectOptions(port, extra));
  if (result.kind !== 'open') throw new Error(`no session: ${JSON.stringify(result.reply)}`);
  sessions.push(result.session);
  return result.session;
}

const message =
  'From: news@brand.test\r\nSubject: hi\r\n\r\nfirst line\r\n.starts with a dot\r\n..two dots\r\nlast\r\n';

describe('SMTP client', () => {
  it('pipelines MAIL, RCPT and DATA where the server offers PIPELINING, with SIZE, dot-stuffing the content', async () => {
    // This server answers nothing before DATA: a client waiting for the MAIL reply would time out.
    const server = await scripted({ pipelining: true, extensions: ['SIZE 1000000'] });
    const session = await open(server.port);
    expect(session.pipelining).toBe(true);
    for (const to of ['a@example.test', 'b@example.test']) {
      const result = await session.send('bounce@brand.test', to, message);
      expect(result).toMatchObject({ kind: 'accepted', reply: { code: 250, enhanced: '2.0.0', text: 'queued' } });
    }
    const size = Buffer.byteLength(message.replace(/\n\./g, '\n..')) + 3;
    expect(server.commands).toEqual([
      'EHLO mta.herald.test',
      `MAIL FROM:<bounce@brand.test> SIZE=${size}`,
      'RCPT TO:<a@example.test>',
      'DATA',
      `MAIL FROM:<bounce@brand.test> SIZE=${size}`,
      'RCPT TO:<b@example.test>',
      'DATA',
    ]);
    expect(server.messages[0]).toBe(
      'From: news@brand.test\r\nSubject: hi\r\n\r\nfirst line\r\n..starts with a dot\r\n...two dots\r\nlast',
    );
  });

  it('never sends a message larger than the SIZE the server declares: it fails at once, hard, as emailtoolarge (RFC 1870)', async () => {
    const server = await scripted({ pipelining: true, extensions: ['SIZE 100'] });
    const session = await open(server.port);
    const large = `Subject: large\r\n\r\n${'x'.repeat(200)}\r\n`;
    const result = await session.send('bounce@brand.test', 'a@example.test', large);
    expect(result).toMatchObject({
      kind: 'rejected',
      reply: { code: null, local: 'message_too_large', enhanced: '5.3.4' },
    });
    expect(result.kind === 'rejected' && defaultVerdict(result.reply)).toMatchObject({
      type: 'hard',
      category: 'emailtoolarge',
    });
    // Nothing of it was written; the connection carries the next (small) message.
    expect(await session.send('bounce@brand.test', 'b@example.test', 'Subject: small\r\n\r\nhi\r\n')).toMatchObject({
      kind: 'accepted',
    });
    expect(server.commands.filter((command) => command.startsWith('RCPT'))).toEqual(['RCPT TO:<b@example.test>']);
    expect(server.messages).toHaveLength(1);
  });

  it('starts the next message once the content is written: its envelope follows the dot before the dot is answered', async () => {
    const server = await scripted({ pipelining: true });
    const session = await open(server.port);
    let second: Promise<unknown> | undefined;
    const first = session.send('bounce@brand.test', 'a@example.test', message, () => {
      expect(session.acceptsNext).toBe(true);
      second = session.send('bounce@brand.test', 'b@example.test', message);
      expect(session.acceptsNext).toBe(false);
    });
    expect(await first).toMatchObject({ kind: 'accepted' });
    expect(await second).toMatchObject({ kind: 'accepted' });
    expect(server.commands.filter((command) => command.startsWith('RCPT'))).toEqual([
      'RCPT TO:<a@example.test>',
      'RCPT TO:<b@example.test>',
    ]);
    expect(server.messages).toHaveLength(2);
    // A third send while two are in flight is refused, never interleaved.
    const more: Array<Promise<unknown>> = [];
    const third = session.send('bounce@brand.test', 'c@example.test', message, () => {
      more.push(session.send('bounce@brand.test', 'd@example.test', message));
      more.push(session.send('bounce@brand.test', 'e@example.test', message));
    });
    expect(await third).toMatchObject({ kind: 'accepted' });
    expect(await Promise.all(more)).toMatchObject([
      { kind: 'accepted' },
      { kind: 'connection_failed', reply: { text: 'connection busy with another transaction' } },
    ]);
    expect(server.messages).toHaveLength(4);
  });

  it('sends one command at a time to a server without PIPELINING', async () => {
    const server = await scripted({ pipelining: false });
    const session = await open(server.port);
    expect(session.pipelining).toBe(false);
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({ kind: 'accepted' });
    expect(await session.send('bounce@brand.test', 'b@example.test', 'Subject: no final line break')).toMatchObject({
      kind: 'accepted',
    });
    expect(server.violations).toBe(0);
    expect(server.commands.filter((command) => command.startsWith('MAIL'))).toEqual([
      'MAIL FROM:<bounce@brand.test>',
      'MAIL FROM:<bounce@brand.test>',
    ]);
    expect(server.messages[1]).toBe('Subject: no final line break');
  });

  it('sends a UTF-8 address only to a server offering SMTPUTF8, with the parameter (RFC 6531 §3.4)', async () => {
    const plain = await scripted({ pipelining: true });
    const session = await open(plain.port);
    expect(await session.send('bounce@brand.test', '用户@example.test', message)).toMatchObject({
      kind: 'rejected',
      reply: { code: null, local: 'smtputf8_unsupported', enhanced: '5.6.7' },
    });
    // Nothing of it was written; the connection carries the next message.
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({ kind: 'accepted' });
    expect(plain.commands.filter((command) => /^(MAIL|RCPT)/.test(command))).toEqual([
      'MAIL FROM:<bounce@brand.test>',
      'RCPT TO:<a@example.test>',
    ]);

    const utf8 = await scripted({ pipelining: true, extensions: ['SMTPUTF8'] });
    const utf8Session = await open(utf8.port);
    expect(await utf8Session.send('bounce@brand.test', '用户@example.test', message)).toMatchObject({
      kind: 'accepted',
    });
    // The server reads bytes as latin1: the address arrives as its UTF-8 bytes.
    expect(utf8.commands.filter((command) => /^(MAIL|RCPT)/.test(command))).toEqual([
      'MAIL FROM:<bounce@brand.test> SMTPUTF8',
      `RCPT TO:<${Buffer.from('用户@example.test', 'utf8').toString('latin1')}>`,
    ]);
  });

  it('turns bare line feeds into CRLF', async () => {
    const server = await scripted({ pipelining: true });
    const session = await open(server.port);
    await session.send('bounce@brand.test', 'a@example.test', 'Subject: lf\n\nline\n.dot\r\nend\n');
    expect(server.messages).toEqual(['Subject: lf\r\n\r\nline\r\n..dot\r\nend']);
  });

  for (const pipelining of [true, false]) {
    it(`reports a refused RCPT as this message's refusal and carries the next one (pipelining ${pipelining})`, async () => {
      const server = await scripted({
        pipelining,
        reply: (command) => {
          if (command === 'RCPT TO:<gone@example.test>')
            return '550-5.1.1 The email account does not exist.\r\n550 5.1.1 Try again';
          // A pipelining server must refuse DATA without a valid recipient (RFC 2920 §3.1).
          if (command === 'DATA' && server.commands.at(-2) === 'RCPT TO:<gone@example.test>')
            return '554 5.5.1 no valid recipients';
          return undefined;
        },
      });
      const session = await open(server.port);
      const refused = await session.send('bounce@brand.test', 'gone@example.test', message);
      expect(refused).toEqual({
        kind: 'rejected',
        reply: { code: 550, enhanced: '5.1.1', text: 'The email account does not exist. Try again', phase: 'rcpt' },
      });
      expect(await session.send('bounce@brand.test', 'ok@example.test', message)).toMatchObject({ kind: 'accepted' });
      expect(server.commands).toContain('RSET');
      expect(server.commands.filter((command) => command === 'DATA')).toHaveLength(pipelining ? 2 : 1);
      expect(server.messages).toHaveLength(1);
    });
  }

  it('ends with an empty message a DATA the server accepted after refusing the recipient', async () => {
    const server = await scripted({
      pipelining: true,
      reply: (command) => (command === 'RCPT TO:<gone@example.test>' ? '550 5.1.1 unknown' : undefined),
    });
    const session = await open(server.port);
    expect(await session.send('bounce@brand.test', 'gone@example.test', message)).toMatchObject({
      kind: 'rejected',
      reply: { code: 550 },
    });
    expect(await session.send('bounce@brand.test', 'ok@example.test', message)).toMatchObject({ kind: 'accepted' });
    expect(server.messages).toEqual(['', expect.stringContaining('first line')]);
  });

  it('treats a 421 as the end of the connection, with the server words', async () => {
    const server = await scripted({
      pipelining: true,
      reply: (command) => (command.startsWith('MAIL') ? '421 4.7.0 Try again later, closing connection' : undefined),
    });
    const session = await open(server.port);
    const result = await session.send('bounce@brand.test', 'a@example.test', message);
    expect(result).toEqual({
      kind: 'connection_failed',
      reply: { code: 421, enhanced: '4.7.0', text: 'Try again later, closing connection', phase: 'mail' },
    });
    expect(session.closing).toBe(true);
  });

  it('never sends an envelope address that would inject a command', async () => {
    const server = await scripted({ pipelining: true });
    const session = await open(server.port);
    const result = await session.send('bounce@brand.test', 'a@example.test>\r\nRCPT TO:<victim@example.test', message);
    expect(result).toMatchObject({ kind: 'rejected', reply: { code: null, local: 'address_unsendable' } });
    // Hard: no server will ever be sent it (a quoted local part may hold ">", RFC 5321 §4.1.2).
    expect(result.kind === 'rejected' && defaultVerdict(result.reply)).toMatchObject({
      type: 'hard',
      reason: 'invalid_address',
    });
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({ kind: 'accepted' });
    expect(server.commands.filter((command) => command.includes('victim'))).toEqual([]);
  });

  it('refuses a hostile server: a reply line without end, a reply of 400 KB, or a line that is not a reply', async () => {
    const endless = await scripted({ pipelining: true, greeting: `220 ${'x'.repeat(10_000)}` });
    expect(await openSmtpSession(connectOptions(endless.port))).toMatchObject({
      kind: 'failed',
      reply: { code: null, local: 'protocol_error', text: 'the server sent a reply line longer than 4096 characters' },
    });
    // 99 lines of 4,000 characters, each within the limits: 400 KB a reply, and eight of them
    // unclaimed held 3.2 MB per idle connection.
    const wide = await scripted({
      pipelining: true,
      reply: (command) =>
        command.startsWith('EHLO') ? `${`250-${'x'.repeat(4_000)}\r\n`.repeat(98)}250 ${'x'.repeat(4_000)}` : undefined,
    });
    expect(await openSmtpSession(connectOptions(wide.port))).toMatchObject({
      kind: 'failed',
      reply: { code: null, local: 'protocol_error', text: 'the server sent a reply longer than 16384 characters' },
    });
    const garbage = await scripted({ pipelining: true, greeting: 'HTTP/1.1 400 Bad Request\r\n' });
    expect(await openSmtpSession(connectOptions(garbage.port))).toMatchObject({
      kind: 'failed',
      reply: {
        local: 'protocol_error',
        text: expect.stringContaining('not an SMTP reply: "HTTP/1.1 400 Bad Request"'),
      },
    });
  });

  it('never counts as sent a reply whose lines disagree on the code: a 250 first line does not hide a final 550', async () => {
    // RFC 5321 §4.2.1: every line of a multi-line reply has the same code. The first line's was
    // read, so "250-ok / 550 rejected" after the dot counted the message as delivered.
    const server = await scripted({
      pipelining: true,
      reply: (command) => (command === '.' ? '250-2.0.0 ok\r\n550 5.7.1 message rejected' : undefined),
    });
    const session = await open(server.port);
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({
      kind: 'connection_failed',
      reply: {
        code: null,
        local: 'protocol_error',
        text: 'the server sent a reply whose lines have different codes: "250-2.0.0 ok" then "550 5.7.1 message rejected"',
      },
    });
    expect(server.messages).toHaveLength(1);
  });

  it('closes the connection of a server flooding replies to commands it was not sent', async () => {
    // Every one used to be queued for a next() that never came: 227 MiB in 3 s on one connection.
    const server = await scripted({
      pipelining: true,
      reply: (command) => (command === '.' ? Array(50).fill('250 ok').join('\r\n') : undefined),
    });
    // An idle timeout far beyond the test's: only the flood itself may end the connection.
    const session = await open(server.port, {
      timeouts: { connectTimeoutMs: 5_000, commandTimeoutMs: 600_000, dataTimeoutMs: 5_000 },
    });
    const closed = new Promise<void>((resolve) => session.onClose(resolve));
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({ kind: 'accepted' });
    await closed;
    expect(session.acceptsNext).toBe(false);
  }, 10_000);

  it('shows the control characters of a reply as U+FFFD: terminal escapes never reach the logs or the CLI', async () => {
    // Stored as received, `herald delivery logs` wrote this to the operator's terminal: a cleared
    // screen, a new window title and a forged green line.
    const server = await scripted({
      pipelining: true,
      reply: (command) =>
        command.startsWith('RCPT')
          ? '550-5.1.1 \x1b[2J\x1b]0;owned\x07\x1b[32mall sent\x1b[0m\b\x7f\r\n550 5.1.1 caf\u00e9\tunknown\u0085'
          : undefined,
    });
    const session = await open(server.port);
    const result = await session.send('bounce@brand.test', 'a@example.test', message);
    expect(result).toMatchObject({
      kind: 'rejected',
      reply: {
        code: 550,
        enhanced: '5.1.1',
        text: '\ufffd[2J\ufffd]0;owned\ufffd\ufffd[32mall sent\ufffd[0m\ufffd\ufffd caf\u00e9 unknown\ufffd',
      },
    });
  });

  it('gives the server reply for a refused greeting and falls back to HELO when EHLO is refused', async () => {
    const busy = await scripted({ pipelining: true, greeting: '554 5.7.1 no service for you\r\n' });
    expect(await openSmtpSession(connectOptions(busy.port))).toMatchObject({
      kind: 'failed',
      reply: { code: 554, enhanced: '5.7.1', text: 'no service for you' },
    });
    const old = await scripted({
      pipelining: false,
      reply: (command) => (command.startsWith('EHLO') ? '502 5.5.2 command not recognized' : undefined),
    });
    const session = await open(old.port);
    expect(session.pipelining).toBe(false);
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({ kind: 'accepted' });
    expect(old.commands.slice(0, 2)).toEqual(['EHLO mta.herald.test', 'HELO mta.herald.test']);
  });

  it('says QUIT before closing after an error reply: a 554 greeting, a refused EHLO and HELO, a refused RSET (RFC 5321 §4.1.1.10)', async () => {
    const refusedGreeting = await scripted({ pipelining: true, greeting: '554 5.7.1 no service for you\r\n' });
    expect(await openSmtpSession(connectOptions(refusedGreeting.port))).toMatchObject({
      kind: 'failed',
      reply: { code: 554 },
    });
    await waitFor(() => refusedGreeting.commands.length > 0, 'the QUIT after a 554 greeting', 5_000);
    expect(refusedGreeting.commands).toEqual(['QUIT']);

    const refusedHello = await scripted({
      pipelining: false,
      reply: (command) => (/^(EHLO|HELO) /.test(command) ? '550 5.7.1 go away' : undefined),
    });
    expect(await openSmtpSession(connectOptions(refusedHello.port))).toMatchObject({
      kind: 'failed',
      reply: { code: 550 },
    });
    await waitFor(() => refusedHello.commands.length > 2, 'the QUIT after a refused HELO', 5_000);
    expect(refusedHello.commands).toEqual(['EHLO mta.herald.test', 'HELO mta.herald.test', 'QUIT']);

    const refusedReset = await scripted({
      pipelining: false,
      reply: (command) =>
        command.startsWith('RCPT')
          ? '452 4.5.3 Too many recipients'
          : command === 'RSET'
            ? '451 4.3.0 try later'
            : undefined,
    });
    const session = await open(refusedReset.port);
    const closed = new Promise<void>((resolve) => session.onClose(resolve));
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({
      kind: 'rejected',
      reply: { code: 452 },
    });
    expect(session.acceptsNext).toBe(false);
    await closed;
    expect(refusedReset.commands.slice(-2)).toEqual(['RSET', 'QUIT']);
  });

  it('fails the session when the MX rule requires TLS and the server offers no STARTTLS', async () => {
    const server = await scripted({ pipelining: true });
    expect(await openSmtpSession(connectOptions(server.port, { requireTls: true }))).toMatchObject({
      kind: 'failed',
      reply: { local: 'tls_failed' },
    });
    expect(server.commands).toEqual(['EHLO mta.herald.test']);
  });

  it('sends in plain text on a new connection when the STARTTLS handshake fails, unless the MX rule requires TLS', async () => {
    const server = await scripted({ pipelining: true, extensions: ['STARTTLS'], breakTls: true });
    const session = await open(server.port);
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({ kind: 'accepted' });
    expect(server.commands.slice(0, 3)).toEqual(['EHLO mta.herald.test', 'STARTTLS', 'EHLO mta.herald.test']);
    expect(server.messages).toHaveLength(1);
    const strict = await scripted({ pipelining: true, extensions: ['STARTTLS'], breakTls: true });
    expect(await openSmtpSession(connectOptions(strict.port, { requireTls: true }))).toMatchObject({
      kind: 'failed',
      reply: { local: 'tls_failed' },
    });
    expect(strict.commands).toEqual(['EHLO mta.herald.test', 'STARTTLS']);
  });

  it('fails the session on a 421 to STARTTLS: the server is closing, its next address or MX host is tried', async () => {
    // Taken as "no TLS here", the session was reported open on a connection the server was
    // closing: its message failed as a lost connection and was deferred, the next address untried.
    const server = await scripted({
      pipelining: true,
      extensions: ['STARTTLS'],
      reply: (command) => (command === 'STARTTLS' ? '421 4.3.2 Service shutting down' : undefined),
    });
    expect(await openSmtpSession(connectOptions(server.port))).toEqual({
      kind: 'failed',
      reply: { code: 421, enhanced: '4.3.2', text: 'Service shutting down' },
    });
    expect(server.commands).toEqual(['EHLO mta.herald.test', 'STARTTLS']);
  });

  it('sends in plain text on a new connection when the STARTTLS handshake never finishes, unless the MX rule requires TLS', async () => {
    // A middlebox that swallows the TLS hello: the handshake ran into the connect timeout, which
    // failed the session as a plain timeout, with no plain-text fallback: every message to the
    // domain was deferred until it expired.
    const timeouts = { connectTimeoutMs: 300, commandTimeoutMs: 5_000, dataTimeoutMs: 5_000 };
    const server = await scripted({ pipelining: true, extensions: ['STARTTLS'], stallTls: true });
    const session = await open(server.port, { timeouts });
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({ kind: 'accepted' });
    expect(server.commands.slice(0, 3)).toEqual(['EHLO mta.herald.test', 'STARTTLS', 'EHLO mta.herald.test']);
    const strict = await scripted({ pipelining: true, extensions: ['STARTTLS'], stallTls: true });
    expect(await openSmtpSession(connectOptions(strict.port, { requireTls: true, timeouts }))).toMatchObject({
      kind: 'failed',
      reply: { local: 'tls_failed', text: 'TLS handshake did not finish within the connect timeout (300 ms)' },
    });
    expect(strict.commands).toEqual(['EHLO mta.herald.test', 'STARTTLS']);
  });

  it('times out a server that does not answer the final dot, as a connection failure', async () => {
    const server = await scripted({ pipelining: true, reply: (command) => (command === '.' ? null : undefined) });
    const session = await open(server.port, {
      timeouts: { connectTimeoutMs: 5_000, commandTimeoutMs: 5_000, dataTimeoutMs: 200 },
    });
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({
      kind: 'connection_failed',
      reply: { local: 'timeout', text: 'timeout: no reply within 200 ms' },
    });
  });
});

/**
 * A server that answers the greeting and EHLO at once, then drips the reply to MAIL FROM (or to the
 * final dot) one byte every 20 ms: a reply that is never complete, though the socket is never idle.
 */
async function dripServer(slowAt: 'MAIL' | '.'): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.write('220 drip.test ESMTP\r\n');
    let buffer = '';
    let inData = false;
    const drip = () => {
      const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write('2')), 20);
      socket.on('close', () => clearInterval(timer));
    };
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (let newline = buffer.indexOf('\r\n'); newline >= 0; newline = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 2);
        if (inData) {
          if (line !== '.') continue;
          inData = false;
          drip();
        } else if (line.startsWith('MAIL') && slowAt === 'MAIL') drip();
        else if (line === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else socket.write(line.startsWith('EHLO') ? '250 drip.test\r\n' : '250 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
  return (server.address() as { port: number }).port;
}

describe('SMTP client against a server that drips its replies', () => {
  // Each byte used to restart the socket's idle timeout: the transaction, its message and the
  // MTA's stop() waited for as long as the server kept dripping.
  it.each([
    ['MAIL', 'commandTimeoutMs'],
    ['.', 'dataTimeoutMs'],
  ] as const)('gives up on a reply to %s not complete within %s, however busy the socket', async (slowAt, _timeout) => {
    const port = await dripServer(slowAt);
    const session = await open(port, {
      timeouts: { connectTimeoutMs: 5_000, commandTimeoutMs: 300, dataTimeoutMs: 300 },
    });
    expect(await session.send('bounce@brand.test', 'a@example.test', message)).toMatchObject({
      kind: 'connection_failed',
      reply: { local: 'timeout', text: 'timeout: no reply within 300 ms' },
    });
    expect(session.closing).toBe(true);
  });
});

describe('SMTP client with the simulator sink', () => {
  it('upgrades with STARTTLS, then pipelines; the sink receives the message as it was built', async () => {
    const sink: SmtpSink = await startSmtpSink({ tls: true, keepMessages: true });
    servers.push(sink);
    const session = await open(sink.port, { requireTls: true });
    expect(session.pipelining).toBe(true);
    for (let i = 0; i < 3; i++)
      expect(await session.send('bounce@brand.test', `r${i}@accept.test`, message)).toMatchObject({ kind: 'accepted' });
    expect(sink.keptMessages.map((kept) => kept.data.toString())).toEqual([message, message, message]);
    expect(sink.keptMessages[2]!.recipients).toEqual(['r2@accept.test']);
    session.quit();
    await new Promise<void>((resolve) => session.onClose(resolve));
    expect(session.closed).toBe(true);
  });

  it('forgets what the server offered before STARTTLS when it answers only HELO inside TLS (RFC 3207 §4.2)', async () => {
    // The extensions of the plain-text EHLO were kept: the session pipelined, and sent SIZE and
    // SMTPUTF8 parameters, to a server that had offered none of them.
    const sink: SmtpSink = await startSmtpSink({
      tls: true,
      keepMessages: true,
      behaviour: { ehloAfterTls: { code: 502, enhanced: '5.5.1', text: 'EHLO not implemented' } },
    });
    servers.push(sink);
    const session = await open(sink.port, { requireTls: true });
    expect(session.pipelining).toBe(false);
    expect(await session.send('bounce@brand.test', 'j\u00f6rg@accept.test', message)).toMatchObject({
      kind: 'rejected',
      reply: { local: 'smtputf8_unsupported' },
    });
    expect(await session.send('bounce@brand.test', 'r@accept.test', message)).toMatchObject({ kind: 'accepted' });
    expect(sink.keptMessages.map((kept) => kept.recipients)).toEqual([['r@accept.test']]);
  });
});
