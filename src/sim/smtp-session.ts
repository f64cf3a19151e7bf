// One SMTP connection to a simulated host. Commands are cut line by line straight from the socket
// Buffers; replies to a pipelined batch (RFC 2920) are written together once the chunk is consumed;
// message bytes are only scanned for the terminator unless the sink keeps messages.
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Clock } from '../common/clock.ts';
import { DataEndScanner, messageFromDataBytes } from './data-end-scanner.ts';
import {
  admitTransaction,
  decideRcptReply,
  formatReply,
  greylistDecision,
  greylistReply,
  rateLimitReply,
  splitAddress,
  type RateWindow,
  type SinkBehaviour,
  type SinkStateView,
  type SmtpReply,
} from './sink-behaviour.ts';
import { increment, type SinkStats } from './sink-stats.ts';

export interface KeptMessage {
  sender: string;
  recipients: string[];
  /** The message as received, dot-unstuffed, without the final ".\r\n". */
  data: Buffer;
  receivedAt: number;
}

/** State shared by every session of one sink. */
export interface SinkContext {
  hostname: string;
  behaviour: SinkBehaviour;
  clock: Clock;
  stats: SinkStats;
  state: SinkStateView;
  secureContext: SecureContext | undefined;
  maxMessageBytes: number;
  maxRecipients: number;
  maxLineBytes: number;
  /** Idle sockets (stalled ones included) are destroyed after this long. */
  idleTimeoutMs: number;
  rateWindow: RateWindow;
  greylist: Map<string, number>;
  /** Null when per-address tracking is off (benchmarks). */
  acceptedRecipients: Map<string, number> | null;
  keptMessages: KeptMessage[] | null;
}

type Mode = 'command' | 'data' | 'stalled' | 'closed';

export class SinkSession {
  private socket: Socket;
  private mode: Mode = 'command';
  private partialLine: Buffer | null = null;
  private replies: string[] = [];
  private closeAfterFlush = false;
  private greeted = false;
  private secure = false;
  private sender: string | null = null;
  private recipients: string[] = [];
  private dataChunks: Buffer[] = [];
  private dataBytes = 0;
  private readonly scanner = new DataEndScanner();
  private messagesOnConnection = 0;
  private readonly onData = (chunk: Buffer) => this.consume(chunk);

  constructor(
    socket: Socket,
    private readonly context: SinkContext,
    private readonly onSocket: (socket: Socket) => void,
  ) {
    this.socket = socket;
    this.attach(socket);
  }

  start(): void {
    const { behaviour } = this.context;
    if (behaviour.stall === 'before-greeting') {
      this.mode = 'stalled';
      return;
    }
    const client = this.socket.remoteAddress ?? '';
    increment(this.context.stats.connectionsByClient, client);
    const greeting = behaviour.greetingByClient?.[client] ??
      behaviour.greeting ?? { code: 220, text: `${this.context.hostname} ESMTP Herald simulator` };
    this.reply(greeting);
    this.flush();
  }

  /** Bookkeeping when the connection is gone (called once by the sink). */
  finish(): void {
    this.mode = 'closed';
    increment(this.context.stats.messagesPerConnection, this.messagesOnConnection);
  }

  private attach(socket: Socket): void {
    socket.setTimeout(this.context.idleTimeoutMs, () => socket.destroy());
    socket.on('data', this.onData);
    socket.on('error', () => socket.destroy());
    this.onSocket(socket);
  }

  private consume(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && (this.mode === 'command' || this.mode === 'data')) {
      if (this.mode === 'data') {
        offset = this.consumeData(chunk, offset);
        continue;
      }
      const newline = chunk.indexOf(10, offset);
      if (newline < 0) {
        this.keepPartialLine(chunk.subarray(offset));
        break;
      }
      let line = chunk.subarray(offset, newline);
      if (this.partialLine) {
        line = Buffer.concat([this.partialLine, line]);
        this.partialLine = null;
      }
      offset = newline + 1;
      const end = line.length > 0 && line[line.length - 1] === 13 ? line.length - 1 : line.length;
      const upgrade = this.command(line.toString('utf8', 0, end));
      if (upgrade) {
        this.flush();
        this.startTls();
        return;
      }
    }
    this.flush();
  }

  private keepPartialLine(piece: Buffer): void {
    const length = (this.partialLine?.length ?? 0) + piece.length;
    if (length > this.context.maxLineBytes) {
      this.partialLine = null;
      this.reply({ code: 500, enhanced: '5.5.6', text: 'Line too long', close: true });
      return;
    }
    this.partialLine = this.partialLine ? Buffer.concat([this.partialLine, piece]) : Buffer.from(piece);
  }

  private consumeData(chunk: Buffer, offset: number): number {
    if (this.context.behaviour.dropDuringData) {
      this.context.stats.droppedDuringData += 1;
      this.mode = 'closed';
      this.replies = [];
      this.socket.destroy();
      return chunk.length;
    }
    const end = this.scanner.scan(chunk, offset);
    const stop = end < 0 ? chunk.length : end;
    this.dataBytes += stop - offset;
    if (this.context.keptMessages && this.dataBytes <= this.context.maxMessageBytes) {
      this.dataChunks.push(chunk.subarray(offset, stop));
    }
    if (end >= 0) this.endOfData();
    return stop;
  }

  private endOfData(): void {
    const { stats, behaviour } = this.context;
    stats.dataBytes += this.dataBytes;
    if (behaviour.stall === 'after-data') {
      this.mode = 'stalled';
      return;
    }
    this.mode = 'command';
    if (this.dataBytes > this.context.maxMessageBytes) {
      this.reply({ code: 552, enhanced: '5.3.4', text: 'Message too big' });
    } else {
      this.acceptMessage();
      this.reply({ code: 250, enhanced: '2.0.0', text: 'Message accepted' });
    }
    this.resetTransaction();
  }

  private acceptMessage(): void {
    const { stats, acceptedRecipients, keptMessages, clock } = this.context;
    stats.messagesAccepted += 1;
    this.messagesOnConnection += 1;
    if (this.messagesOnConnection > stats.maxMessagesPerConnection) {
      stats.maxMessagesPerConnection = this.messagesOnConnection;
    }
    if (acceptedRecipients) {
      for (const address of this.recipients)
        acceptedRecipients.set(address, (acceptedRecipients.get(address) ?? 0) + 1);
    }
    if (keptMessages) {
      keptMessages.push({
        sender: this.sender ?? '',
        recipients: [...this.recipients],
        data: messageFromDataBytes(Buffer.concat(this.dataChunks)),
        receivedAt: clock.now(),
      });
    }
  }

  /** Returns true when the connection must switch to TLS now. */
  private command(line: string): boolean {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const argument = space < 0 ? '' : line.slice(space + 1).trim();
    if (verb === 'STARTTLS') return this.starttls();
    switch (verb) {
      case 'EHLO':
        this.ehlo(argument);
        break;
      case 'HELO':
        this.greeted = true;
        this.resetTransaction();
        this.reply({ code: 250, text: this.context.hostname });
        break;
      case 'MAIL':
        this.mail(argument);
        break;
      case 'RCPT':
        this.rcpt(argument);
        break;
      case 'DATA':
        this.data();
        break;
      case 'RSET':
        this.resetTransaction();
        this.reply({ code: 250, enhanced: '2.0.0', text: 'OK' });
        break;
      case 'NOOP':
        this.reply({ code: 250, enhanced: '2.0.0', text: 'OK' });
        break;
      case 'VRFY':
        this.reply({ code: 252, enhanced: '2.5.2', text: 'Cannot VRFY user' });
        break;
      case 'QUIT':
        this.reply({ code: 221, enhanced: '2.0.0', text: 'Bye', close: true });
        break;
      default:
        this.reply({ code: 500, enhanced: '5.5.2', text: 'Command not recognized' });
    }
    return false;
  }

  private ehlo(argument: string): void {
    if (!argument) return this.reply({ code: 501, enhanced: '5.5.4', text: 'EHLO needs a domain' });
    const refusal = this.secure ? this.context.behaviour.ehloAfterTls : undefined;
    if (refusal) return this.reply(refusal);
    this.greeted = true;
    this.resetTransaction();
    const lines = [
      `${this.context.hostname} at your service`,
      'PIPELINING',
      '8BITMIME',
      'SMTPUTF8',
      `SIZE ${this.context.maxMessageBytes}`,
      'ENHANCEDSTATUSCODES',
    ];
    if (this.context.secureContext && !this.secure) lines.push('STARTTLS');
    const last = lines.length - 1;
    this.replies.push(lines.map((text, index) => `250${index === last ? ' ' : '-'}${text}\r\n`).join(''));
  }

  private mail(argument: string): void {
    if (!this.greeted) return this.reply({ code: 503, enhanced: '5.5.1', text: 'Send EHLO first' });
    if (this.sender !== null) return this.reply({ code: 503, enhanced: '5.5.1', text: 'Nested MAIL command' });
    const address = parsePath(argument, 'FROM');
    if (address === null) return this.reply({ code: 501, enhanced: '5.1.7', text: 'Bad sender address syntax' });
    const declaredSize = /\bSIZE=(\d+)/i.exec(argument);
    if (declaredSize && Number(declaredSize[1]) > this.context.maxMessageBytes) {
      return this.reply({ code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed limit' });
    }
    const limit = this.context.behaviour.rateLimitPerMinute;
    if (limit !== undefined) {
      const decision = admitTransaction(this.context.rateWindow, limit, this.context.clock.now());
      this.context.rateWindow = decision.window;
      if (!decision.admitted) {
        this.context.stats.rateLimited += 1;
        return this.reply(rateLimitReply);
      }
    }
    this.sender = address;
    this.reply({ code: 250, enhanced: '2.1.0', text: 'Sender OK' });
  }

  private rcpt(argument: string): void {
    if (this.sender === null) return this.reply({ code: 503, enhanced: '5.5.1', text: 'Send MAIL first' });
    const address = parsePath(argument, 'TO');
    if (!address) return this.reply({ code: 501, enhanced: '5.1.3', text: 'Bad recipient address syntax' });
    if (this.recipients.length >= this.context.maxRecipients) {
      return this.countRcpt({ code: 452, enhanced: '4.5.3', text: 'Too many recipients' });
    }
    const { localPart, domain } = splitAddress(address);
    const now = this.context.clock.now();
    const { behaviour, state } = this.context;
    let reply = decideRcptReply(behaviour, { sender: this.sender, address, localPart, domain, now, state });
    if (reply.code === 250 && behaviour.greylist) {
      const key = `${this.sender.toLowerCase()}\n${address.toLowerCase()}`;
      const decision = greylistDecision(this.context.greylist.get(key), behaviour.greylist.delayMs, now);
      this.context.greylist.set(key, decision.firstSeenAt);
      if (decision.defer) reply = greylistReply;
    }
    if (reply.code === 250) this.recipients.push(address.toLowerCase());
    this.countRcpt(reply);
  }

  private countRcpt(reply: SmtpReply): void {
    const { stats } = this.context;
    if (reply.code === 250) stats.recipientsAccepted += 1;
    else stats.recipientsRefused += 1;
    increment(stats.rcptRepliesByCode, reply.code);
    this.reply(reply);
  }

  private data(): void {
    if (this.sender === null) return this.reply({ code: 503, enhanced: '5.5.1', text: 'Send MAIL first' });
    if (this.recipients.length === 0) return this.reply({ code: 554, enhanced: '5.5.1', text: 'No valid recipients' });
    this.mode = 'data';
    this.scanner.reset();
    this.dataChunks = [];
    this.dataBytes = 0;
    this.reply({ code: 354, text: 'End data with <CR><LF>.<CR><LF>' });
  }

  private starttls(): boolean {
    if (!this.context.secureContext) {
      this.reply({ code: 502, enhanced: '5.5.1', text: 'STARTTLS not available' });
      return false;
    }
    if (this.secure) {
      this.reply({ code: 503, enhanced: '5.5.1', text: 'Already using TLS' });
      return false;
    }
    this.reply({ code: 220, enhanced: '2.0.0', text: 'Ready to start TLS' });
    return true;
  }

  // RFC 3207 §4.2: everything sent before the upgrade is forgotten, including EHLO, and any
  // command pipelined after STARTTLS in the same chunk is discarded.
  private startTls(): void {
    const plain = this.socket;
    plain.removeListener('data', this.onData);
    plain.setTimeout(0); // the TLS socket carries the traffic (and the idle timer) from now on
    const secure = new TLSSocket(plain, { isServer: true, secureContext: this.context.secureContext });
    this.socket = secure;
    this.secure = true;
    this.greeted = false;
    this.partialLine = null;
    this.resetTransaction();
    this.attach(secure);
  }

  private resetTransaction(): void {
    this.sender = null;
    this.recipients = [];
    this.dataChunks = [];
    this.dataBytes = 0;
  }

  private reply(reply: SmtpReply): void {
    this.replies.push(formatReply(reply));
    if (reply.close) {
      this.closeAfterFlush = true;
      this.mode = 'closed';
    }
  }

  private flush(): void {
    if (this.replies.length > 0 && !this.socket.destroyed) {
      this.socket.write(this.replies.length === 1 ? this.replies[0]! : this.replies.join(''));
    }
    this.replies = [];
    if (this.closeAfterFlush) this.socket.end();
  }
}

/** Extracts the address from `FROM:<a@b> PARAMS` / `TO:<a@b>`; '' is the null sender. */
function parsePath(argument: string, keyword: 'FROM' | 'TO'): string | null {
  const colon = argument.indexOf(':');
  if (colon < 0 || argument.slice(0, colon).trim().toUpperCase() !== keyword) return null;
  const rest = argument.slice(colon + 1).trim();
  if (!rest.startsWith('<')) return rest.split(' ')[0] ?? null;
  const close = rest.indexOf('>');
  if (close < 0) return null;
  return rest.slice(1, close);
}
