// A bare SMTP client over a socket, for tests and benchmarks that need control a real client does
// not give: arbitrary pipelining, bytes split at chosen boundaries, malformed input.
import { connect, type Socket } from 'node:net';

export interface RawReply {
  code: number;
  /** Every line of the reply, without CRLF. */
  lines: string[];
  /** The last line's text after "NNN ". */
  text: string;
}

export class RawSmtpClient {
  private buffered = '';
  private currentLines: string[] = [];
  private readonly replies: RawReply[] = [];
  private waiter: { count: number; resolve: (replies: RawReply[]) => void; reject: (error: Error) => void } | null =
    null;
  private ended = false;
  private readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.receive(text));
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => {
      this.ended = true;
      this.settle();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawSmtpClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawSmtpClient(socket));
      });
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Resolves with the next `count` replies; rejects if the server closes before sending them. */
  read(count = 1): Promise<RawReply[]> {
    return new Promise((resolve, reject) => {
      this.waiter = { count, resolve, reject };
      this.settle();
    });
  }

  async command(line: string): Promise<RawReply> {
    this.send(`${line}\r\n`);
    const [reply] = await this.read(1);
    return reply!;
  }

  /** Resolves when the server has closed the connection. */
  closed(): Promise<void> {
    return this.closedPromise;
  }

  get isClosed(): boolean {
    return this.ended;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private receive(text: string): void {
    this.buffered += text;
    let newline = this.buffered.indexOf('\r\n');
    while (newline >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 2);
      this.currentLines.push(line);
      if (line[3] !== '-') {
        this.replies.push({ code: Number(line.slice(0, 3)), lines: this.currentLines, text: line.slice(4) });
        this.currentLines = [];
      }
      newline = this.buffered.indexOf('\r\n');
    }
    this.settle();
  }

  private settle(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    if (this.replies.length >= waiter.count) {
      this.waiter = null;
      waiter.resolve(this.replies.splice(0, waiter.count));
    } else if (this.ended) {
      this.waiter = null;
      waiter.reject(new Error(`connection closed after ${this.replies.length} of ${waiter.count} replies`));
    }
  }
}
