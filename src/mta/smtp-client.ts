import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { localFailure, parseSmtpReply, type LocalFailure, type SmtpReply } from '../bounce/smtp-reply.ts';
import type { SmtpPhase } from '../bounce/types.ts';
import { SmtpReplyReader } from './smtp-reply-reader.ts';
import { smtpDataOf } from './smtp-transparency.mjs';

// One SMTP connection to one MX host (RFC 5321), over node:net and node:tls. Where the server
// offers PIPELINING (RFC 2920), a message's MAIL FROM, RCPT TO and DATA go in one write, and once
// its content and final dot are written the next message may start at once: its MAIL, RCPT and
// DATA follow the dot in the same write (the content may open a group, §3.1), while the dot's
// reply is still on its way. In a steady stream that is one write and one read per message, where
// nodemailer's SMTPConnection, used before, sent and waited for one command at a time.
// The key distinction of its results: a reply to *this message* (the connection is still good)
// versus a connection-level failure (no final reply: the message was not delivered as far as we
// know and must be retried — never counted as sent).

export interface SmtpTimeouts {
  /** TCP connect + greeting + EHLO/STARTTLS. */
  connectTimeoutMs: number;
  /** Each command reply, complete (a deadline: dripping bytes does not extend it); an idle connection closes after it too. */
  commandTimeoutMs: number;
  /** The content's transfer and the reply after the final dot (RFC 5321 §4.5.3.2.6), a deadline too. */
  dataTimeoutMs: number;
}

export interface SmtpConnectOptions {
  /** The address to connect to (IP, or a route's host). */
  host: string;
  port: number;
  /** The MX host name: SNI for STARTTLS. */
  servername: string;
  heloName: string;
  opportunisticTls: boolean;
  /** MX rule `tls: required`: no STARTTLS offered or it fails → no session (the message is deferred). */
  requireTls?: boolean;
  timeouts: SmtpTimeouts;
  localAddress?: string;
}

export type TransactionResult =
  | { kind: 'accepted'; reply: SmtpReply }
  /** The server answered this message with a refusal; the connection can carry the next one. */
  | { kind: 'rejected'; reply: SmtpReply }
  /** No final reply: dropped, timed out, 421. The connection is gone. */
  | { kind: 'connection_failed'; reply: SmtpReply };

export type OpenResult = { kind: 'open'; session: SmtpSession } | { kind: 'failed'; reply: SmtpReply };

export interface SmtpSession {
  /**
   * Sends one message: its text, or its SMTP DATA bytes as smtpDataOf makes them (dot-stuffed,
   * ending in CRLF "." CRLF). `onContentWritten` is called once its content is written and only the
   * final reply is awaited: from then on, with pipelining, `acceptsNext` is true and one more send
   * may start.
   */
  send(
    envelopeFrom: string,
    recipient: string,
    message: string | Uint8Array,
    onContentWritten?: () => void,
  ): Promise<TransactionResult>;
  /** Whether a send may start now: none in flight, or (pipelining) one that awaits only its final reply. */
  readonly acceptsNext: boolean;
  /** Polite end: QUIT, then close. */
  quit(): void;
  close(): void;
  readonly closed: boolean;
  /** True from quit()/close() on: the connection takes no new transaction. */
  readonly closing: boolean;
  /** Whether the server offered PIPELINING (and the session uses it). */
  readonly pipelining: boolean;
  /** Called once when the connection's socket is closed, whoever ended it. */
  onClose(listener: () => void): void;
}

/** After QUIT, how long the server has to close before the socket is destroyed. */
const quitCloseMs = 1_000;
/** A character that would end or split a command line: never sent inside an envelope address. */
const unsafeInCommand = /[\r\n<>\0]/;
const nonAscii = /[^\x00-\x7f]/;

export async function openSmtpSession(options: SmtpConnectOptions): Promise<OpenResult> {
  const connection = new SmtpClientConnection(options);
  const failure = await connection.open();
  if (!failure) return { kind: 'open', session: connection };
  // RFC 5321 §4.1.1.10: a client MUST NOT close the channel without QUIT, even after an error
  // reply (a 554 greeting, a refused EHLO and HELO, TLS required but not offered). A connection
  // already gone (421, timeout, reset) is only closed.
  if (failure.code !== null && failure.code !== 421) connection.quit();
  else if (failure.local === 'tls_failed' && !connection.tlsHandshakeFailed) connection.quit();
  else connection.close();
  // Opportunistic TLS (RFC 7435): a server whose STARTTLS handshake fails still gets the message,
  // in plain text on a new connection, as other MTAs do; an MX rule `tls: required` never does.
  if (failure.local === 'tls_failed' && connection.tlsHandshakeFailed && !options.requireTls)
    return openSmtpSession({ ...options, opportunisticTls: false });
  return { kind: 'failed', reply: failure };
}

class SmtpClientConnection implements SmtpSession {
  readonly #options: SmtpConnectOptions;
  readonly #socket: Socket;
  /** The socket commands are written to: the TCP socket, or the TLS socket over it after STARTTLS. */
  #stream: Socket;
  #reader = new SmtpReplyReader();
  /** Why the connection went away when no reply says it (timeout, reset, protocol error). */
  #failure: SmtpReply | undefined;
  #extensions = new Set<string>();
  /** The largest message the server accepts (EHLO SIZE, RFC 1870); 0 = no limit declared. */
  #maxMessageBytes = 0;
  #closed = false;
  #closing = false;
  /** Set once the TLS handshake finished: a later socket error is a lost connection, not a TLS failure. */
  #secure = false;
  /** STARTTLS was accepted but the handshake did not finish. */
  tlsHandshakeFailed = false;
  /** Transactions started and not finished: at most two, the first awaiting only its final reply. */
  #inFlight = 0;
  #awaitingFinalReply = false;
  #quitWhenIdle = false;
  readonly #closeListeners: Array<() => void> = [];
  /** The time allowed for each reply awaited, in order: the first one's deadline is armed. */
  readonly #awaited: number[] = [];
  #replyDeadline: NodeJS.Timeout | undefined;

  constructor(options: SmtpConnectOptions) {
    this.#options = options;
    this.#socket = connectTcp({ host: options.host, port: options.port, localAddress: options.localAddress });
    this.#socket.setNoDelay(true);
    this.#stream = this.#socket;
    this.#listen(this.#socket);
    this.#socket.once('close', () => this.#onSocketClosed());
  }

  get closed(): boolean {
    return this.#closed;
  }

  get closing(): boolean {
    return this.#closing || this.#closed;
  }

  get pipelining(): boolean {
    return this.#extensions.has('PIPELINING');
  }

  get acceptsNext(): boolean {
    if (this.#closed || this.#closing) return false;
    return this.#inFlight === 0 || (this.#inFlight === 1 && this.#awaitingFinalReply && this.pipelining);
  }

  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.push(listener);
  }

  /** Connects, reads the greeting, says EHLO (HELO when refused) and upgrades with STARTTLS; the failure, if any. */
  async open(): Promise<SmtpReply | undefined> {
    const { timeouts } = this.#options;
    const deadline = setTimeout(
      () =>
        this.#fail(
          // A handshake that never finishes (a middlebox swallowing the TLS hello) is a failed one:
          // as a plain timeout it had no plain-text fallback, and the domain got no mail at all.
          this.#stream !== this.#socket && !this.#secure
            ? localFailure(
                'tls_failed',
                `TLS handshake did not finish within the connect timeout (${timeouts.connectTimeoutMs} ms)`,
              )
            : localFailure(
                'timeout',
                `connection timeout: no session within ${timeouts.connectTimeoutMs} ms (connect, greeting, EHLO)`,
              ),
        ),
      timeouts.connectTimeoutMs,
    );
    try {
      const greeting = await this.#reader.next();
      if (greeting === null) return this.#lost('connection closed before the greeting');
      if (!greeting.startsWith('220')) return refusal(greeting, 'connect');
      const hello = await this.#hello();
      if (hello) return hello;
      const tls = await this.#startTls();
      if (tls) return tls;
      this.#stream.setTimeout(timeouts.commandTimeoutMs);
      return undefined;
    } finally {
      clearTimeout(deadline);
    }
  }

  send(
    envelopeFrom: string,
    recipient: string,
    message: string | Uint8Array,
    onContentWritten?: () => void,
  ): Promise<TransactionResult> {
    if (!this.acceptsNext)
      return Promise.resolve({
        kind: 'connection_failed',
        reply: localFailure(
          'connection_lost',
          this.closing ? 'connection closed before the transaction' : 'connection busy with another transaction',
        ),
      });
    if (unsafeInCommand.test(envelopeFrom) || unsafeInCommand.test(recipient))
      return Promise.resolve({
        kind: 'rejected',
        reply: localFailure(
          'address_unsendable',
          'an envelope address holds a line break, "<", ">" or NUL: never sent',
          '5.1.3',
        ),
      });
    // RFC 6531 §3.4: an internationalized address goes only to a server that offers SMTPUTF8.
    if (!this.#extensions.has('SMTPUTF8') && nonAscii.test(envelopeFrom + recipient))
      return Promise.resolve({
        kind: 'rejected',
        reply: localFailure(
          'smtputf8_unsupported',
          `${this.#options.servername} does not offer SMTPUTF8: a non-ASCII address cannot be sent to it (RFC 6531)`,
          '5.6.7',
        ),
      });
    this.#inFlight++;
    return this.#transaction(envelopeFrom, recipient, message, onContentWritten).finally(() => {
      this.#inFlight--;
      if (this.#quitWhenIdle && this.#inFlight === 0) this.quit();
    });
  }

  quit(): void {
    if (this.#closed || (this.#closing && !this.#quitWhenIdle)) return;
    this.#closing = true;
    if (this.#inFlight > 0) {
      this.#quitWhenIdle = true;
      return;
    }
    this.#quitWhenIdle = false;
    this.#stream.end('QUIT\r\n');
    setTimeout(() => this.#socket.destroy(), quitCloseMs).unref();
  }

  close(): void {
    this.#closing = true;
    if (!this.#closed) {
      this.#stream.destroy();
      this.#socket.destroy();
    }
  }

  async #transaction(
    from: string,
    recipient: string,
    message: string | Uint8Array,
    onContentWritten: (() => void) | undefined,
  ): Promise<TransactionResult> {
    const data = typeof message === 'string' ? smtpDataOf(message) : message;
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    // RFC 1870 §6.1: a message over the server's declared maximum is not sent; it would only be
    // refused (552 5.3.4) after its whole transfer, again at every retry.
    if (this.#maxMessageBytes > 0 && bytes > this.#maxMessageBytes)
      return {
        kind: 'rejected',
        reply: localFailure(
          'message_too_large',
          `the message is ${bytes} bytes, over the ${this.#maxMessageBytes} ${this.#options.servername} accepts (EHLO SIZE): never sent`,
          '5.3.4',
        ),
      };
    const size = this.#extensions.has('SIZE') ? ` SIZE=${bytes}` : '';
    const utf8 = this.#extensions.has('SMTPUTF8') && nonAscii.test(from + recipient) ? ' SMTPUTF8' : '';
    const mail = `MAIL FROM:<${from}>${size}${utf8}\r\n`;
    const rcpt = `RCPT TO:<${recipient}>\r\n`;
    let mailReply: string | null;
    let rcptReply: string | null = null;
    let dataReply: string | null = null;
    if (this.pipelining) {
      this.#stream.write(`${mail}${rcpt}DATA\r\n`);
      const { commandTimeoutMs } = this.#options.timeouts;
      [mailReply, rcptReply, dataReply] = await Promise.all([
        this.#reply(commandTimeoutMs),
        this.#reply(commandTimeoutMs),
        this.#reply(commandTimeoutMs),
      ]);
    } else {
      mailReply = await this.#command(mail);
      if (isPositive(mailReply)) rcptReply = await this.#command(rcpt);
      if (isPositive(rcptReply)) dataReply = await this.#command('DATA\r\n');
    }
    const envelope = [mailReply, rcptReply, dataReply];
    const refusedAt = envelope.findIndex((reply) => !isPositive(reply));
    if (refusedAt >= 0 || !dataReply?.startsWith('354')) {
      // A server may still answer DATA with 354 after a refused RCPT: an empty message ends it.
      if (dataReply?.startsWith('354')) await this.#command('.\r\n');
      return refusedAt >= 0
        ? this.#refused(envelope[refusedAt] ?? null, envelopePhases[refusedAt]!)
        : this.#refused(dataReply, 'data');
    }
    const finalReply = this.#writeContent(data);
    this.#awaitingFinalReply = true;
    onContentWritten?.();
    const final = await finalReply;
    this.#awaitingFinalReply = false;
    return this.#finished(final);
  }

  #finished(finalReply: string | null): TransactionResult {
    if (finalReply === null || finalReply.startsWith('421')) return this.#connectionFailed(finalReply, 'dot');
    if (finalReply.startsWith('2')) return { kind: 'accepted', reply: parseSmtpReply(finalReply) };
    // The transaction ended with the reply to the final dot: the connection takes the next message.
    return { kind: 'rejected', reply: { ...parseSmtpReply(finalReply), phase: 'dot' } };
  }

  /** A refusal in the envelope: RSET ends the transaction so the connection can carry the next message. */
  async #refused(reply: string | null, phase: SmtpPhase): Promise<TransactionResult> {
    if (reply === null || reply.startsWith('421')) return this.#connectionFailed(reply, phase);
    const reset = await this.#command('RSET\r\n');
    // A refused RSET leaves the transaction's state unknown: QUIT (after this transaction) and a new connection.
    if (reset === null || reset.startsWith('421')) this.close();
    else if (!isPositive(reset)) this.quit();
    return { kind: 'rejected', reply: { ...parseSmtpReply(reply), phase } };
  }

  #connectionFailed(reply: string | null, phase: SmtpPhase): TransactionResult {
    this.close();
    if (reply !== null) return { kind: 'connection_failed', reply: { ...parseSmtpReply(reply), phase } };
    return {
      kind: 'connection_failed',
      reply: this.#failure ?? localFailure('connection_lost', 'connection closed during the transaction'),
    };
  }

  async #hello(): Promise<SmtpReply | undefined> {
    const name = this.#options.heloName;
    const ehlo = await this.#command(`EHLO ${name}\r\n`);
    if (ehlo === null) return this.#lost('connection closed after EHLO');
    if (ehlo.startsWith('250')) {
      this.#extensions = extensionsOf(ehlo);
      this.#maxMessageBytes = sizeLimitOf(ehlo);
      return undefined;
    }
    if (!ehlo.startsWith('5')) return refusal(ehlo, 'helo');
    // RFC 5321 §3.2: a server that does not know EHLO answers 5xx; HELO is the fallback, without
    // extensions, those of a plain-text EHLO before STARTTLS included (RFC 3207 §4.2).
    this.#extensions = new Set();
    this.#maxMessageBytes = 0;
    const helo = await this.#command(`HELO ${name}\r\n`);
    if (helo === null) return this.#lost('connection closed after HELO');
    return helo.startsWith('250') ? undefined : refusal(helo, 'helo');
  }

  async #startTls(): Promise<SmtpReply | undefined> {
    const { opportunisticTls, requireTls } = this.#options;
    if (!requireTls && !opportunisticTls) return undefined;
    if (!this.#extensions.has('STARTTLS'))
      return requireTls
        ? localFailure('tls_failed', 'the server does not offer STARTTLS and the MX rule requires TLS')
        : undefined;
    const ready = await this.#command('STARTTLS\r\n');
    if (ready === null) return this.#lost('connection closed after STARTTLS');
    // 421: the server is closing the connection (RFC 5321 §3.8), not declining TLS; as at the
    // greeting, the host's next address is tried.
    if (ready.startsWith('421')) return parseSmtpReply(ready);
    if (!ready.startsWith('220'))
      return requireTls ? localFailure('tls_failed', `STARTTLS refused: ${parseSmtpReply(ready).text}`) : undefined;
    const upgraded = await this.#upgrade();
    if (upgraded) return upgraded;
    // RFC 3207 §4.2: what the server said before TLS is forgotten; EHLO again.
    return this.#hello();
  }

  #upgrade(): Promise<SmtpReply | undefined> {
    const { servername } = this.#options;
    const servernameIsIp = /^[\d.]+$|:/.test(servername);
    this.#socket.removeAllListeners('data');
    this.#socket.removeAllListeners('timeout');
    this.#reader = new SmtpReplyReader();
    const secure = connectTls({
      socket: this.#socket,
      // MX certificates are rarely valid for the MX name; opportunistic TLS still beats plain text.
      rejectUnauthorized: false,
      ...(servernameIsIp ? {} : { servername }),
    });
    this.#stream = secure;
    this.#listen(secure);
    return new Promise((resolve) => {
      secure.once('secureConnect', () => {
        this.#secure = true;
        resolve(undefined);
      });
      secure.once('close', () => this.#onSocketClosed());
      secure.once('close', () => {
        this.tlsHandshakeFailed = !this.#secure;
        resolve(this.#failure ?? localFailure('tls_failed', 'TLS handshake did not finish'));
      });
    });
  }

  #listen(stream: Socket): void {
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      if (!this.#reader.push(text)) this.#fail(localFailure('protocol_error', this.#reader.error ?? 'protocol error'));
    });
    // Only while no reply is awaited (#reply's deadlines hold then): an idle connection closes.
    stream.on('timeout', () =>
      this.#fail(localFailure('timeout', `idle timeout: nothing sent for ${stream.timeout} ms, connection closed`)),
    );
    stream.on('error', (error: NodeJS.ErrnoException) => {
      const handshake = stream !== this.#socket && !this.#secure;
      this.#failure ??= localFailure(handshake ? 'tls_failed' : failureOfCode(error.code), error.message);
    });
    stream.once('end', () => {
      this.#closing = true;
    });
  }

  /**
   * Writes the content and final dot, held until the next turn of the event loop so that a next
   * message's pipelined MAIL, RCPT and DATA, started meanwhile, leave in the same write.
   */
  #writeContent(data: string | Uint8Array): Promise<string | null> {
    if (this.#closed) return Promise.resolve(null);
    const stream = this.#stream;
    stream.cork();
    stream.write(data);
    setImmediate(() => stream.uncork());
    // From the 354 on: the content's transfer and the reply after the dot (RFC 5321 §4.5.3.2.6).
    return this.#reply(this.#options.timeouts.dataTimeoutMs);
  }

  /** Writes a command and waits for its reply (null: the connection ended first). */
  #command(line: string): Promise<string | null> {
    if (this.#closed) return Promise.resolve(null);
    this.#stream.write(line);
    return this.#reply(this.#options.timeouts.commandTimeoutMs);
  }

  /**
   * The next reply, which must be complete within `timeoutMs` of the previous one (or of now, when
   * none is awaited before it). A deadline, not the socket's idle timeout: a server dripping one
   * byte at a time resets an idle timeout forever and held the connection, its messages and stop().
   */
  #reply(timeoutMs: number): Promise<string | null> {
    this.#awaited.push(timeoutMs);
    if (this.#awaited.length === 1) this.#armReplyDeadline();
    return this.#reader.next().then((reply) => {
      this.#awaited.shift();
      this.#armReplyDeadline();
      return reply;
    });
  }

  #armReplyDeadline(): void {
    clearTimeout(this.#replyDeadline);
    this.#replyDeadline = undefined;
    if (this.#closed) return;
    const timeoutMs = this.#awaited[0];
    // The socket's idle timeout applies only while nothing is awaited.
    this.#stream.setTimeout(timeoutMs === undefined ? this.#options.timeouts.commandTimeoutMs : 0);
    if (timeoutMs === undefined) return;
    this.#replyDeadline = setTimeout(
      () => this.#fail(localFailure('timeout', `timeout: no reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
  }

  #lost(text: string): SmtpReply {
    return this.#failure ?? localFailure('connection_lost', text);
  }

  #fail(reply: SmtpReply): void {
    this.#failure ??= reply;
    this.close();
  }

  #onSocketClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    clearTimeout(this.#replyDeadline);
    this.#reader.end();
    for (const listener of this.#closeListeners.splice(0)) listener();
  }
}

function isPositive(reply: string | null | undefined): boolean {
  return reply !== null && reply !== undefined && (reply.startsWith('2') || reply.startsWith('354'));
}

/**
 * The command each envelope reply answers. Qualification reads it (rules/bounce/default.yaml): a
 * refusal of MAIL FROM is about our sender or host, never the recipient; "550 No such user here"
 * names the recipient only in reply to RCPT TO. Without it "550 Requested action not taken:
 * mailbox unavailable" at MAIL FROM was a hard user_unknown (the recipient quarantined for our
 * sender's fault), and "550 No such user here" at RCPT TO a soft `filtered`, retried for days.
 */
const envelopePhases = ['mail', 'rcpt', 'data'] as const satisfies readonly SmtpPhase[];

/**
 * A refusal at the greeting or to EHLO/HELO, with its phase when it is a 5xx: the server refused
 * this client, not a recipient, so it is `blocked` whatever its words (rule refused-at-greeting of
 * rules/bounce/default.yaml); without the phase "554 mx.example.com ESMTP not accepting messages"
 * was `undefined` and "554 Service unavailable" a `systemerror`. A 4xx (421: busy, shutting down)
 * is the server's state, not a decision on us: its words decide, as for any connection failure.
 */
function refusal(raw: string, phase: 'connect' | 'helo'): SmtpReply {
  const reply = parseSmtpReply(raw);
  return reply.code !== null && reply.code >= 500 ? { ...reply, phase } : reply;
}

/** The keywords of an EHLO reply (its lines after the first), upper case: PIPELINING, SIZE, STARTTLS… */
export function extensionsOf(ehloReply: string): Set<string> {
  const keywords = new Set<string>();
  for (const line of ehloReply.split('\n').slice(1)) {
    const keyword = line.slice(4).trim().split(/\s+/)[0];
    if (keyword) keywords.add(keyword.toUpperCase());
  }
  return keywords;
}

/** The SIZE limit an EHLO reply declares (RFC 1870 §4): 0 when absent, without value or 0 (no limit). */
export function sizeLimitOf(ehloReply: string): number {
  for (const line of ehloReply.split('\n').slice(1)) {
    const [keyword, value] = line.slice(4).trim().split(/\s+/);
    if (keyword?.toUpperCase() === 'SIZE') return /^\d+$/.test(value ?? '') ? Number(value) : 0;
  }
  return 0;
}

function failureOfCode(code: string | undefined): LocalFailure {
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'connection_lost';
}
