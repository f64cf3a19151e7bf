import { createServer, type Server, type Socket } from 'node:net';

// A small SMTP server for protocol tests of Herald's SMTP client: it records every command line,
// answers from a script (default: accept everything), and checks the client's pipelining. With
// `pipelining`, it advertises PIPELINING and holds its replies until the group's last command
// (DATA, RSET, QUIT, NOOP, EHLO) arrives, as RFC 2920 servers may: a client that waited for each
// reply would never get one. Without it, a second command in the same chunk before its reply is
// counted in `violations`.

export interface ScriptedSmtpServer {
  readonly port: number;
  /** Command lines in the order received, all connections. */
  readonly commands: string[];
  /** Message contents received after DATA, as sent (still dot-stuffed), without the final ".\r\n". */
  readonly messages: string[];
  /** Commands sent before the reply to the previous one, on a server without PIPELINING. */
  readonly violations: number;
  close(): Promise<void>;
}

export interface ScriptedSmtpOptions {
  pipelining: boolean;
  /** Extra EHLO keywords (after PIPELINING when offered), e.g. ['SIZE 1000000', 'STARTTLS']. */
  extensions?: string[];
  /** Answer STARTTLS with 220, then answer the client's TLS hello with bytes that are not TLS and close. */
  breakTls?: boolean;
  /** Answer STARTTLS with 220, then never answer the client's TLS hello (a middlebox swallowing it). */
  stallTls?: boolean;
  /** The whole raw text written for the greeting; default "220 scripted.test ESMTP\r\n". */
  greeting?: string;
  /** The reply (without its final CRLF) to a command line or to the end of data ("."), when it differs from the default; null: no reply at all. */
  reply?(command: string): string | null | undefined;
}

const groupEnd = /^(DATA|RSET|QUIT|NOOP|EHLO|HELO|STARTTLS)\b/i;

export async function startScriptedSmtpServer(options: ScriptedSmtpOptions): Promise<ScriptedSmtpServer> {
  const commands: string[] = [];
  const messages: string[] = [];
  const sockets = new Set<Socket>();
  let violations = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    socket.write(options.greeting ?? '220 scripted.test ESMTP\r\n');
    let buffer = '';
    let inData = false;
    let content: string[] = [];
    let held: string[] = [];
    let tlsHello = false;
    socket.on('data', (chunk: string) => {
      if (tlsHello) {
        if (!options.stallTls) socket.end('HTTP/1.0 400 this is not TLS\r\n\r\n');
        return;
      }
      buffer += chunk;
      let newline = buffer.indexOf('\r\n');
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 2);
        newline = buffer.indexOf('\r\n');
        if (inData) {
          if (line !== '.') {
            content.push(line);
            continue;
          }
          inData = false;
          messages.push(content.join('\r\n'));
          content = [];
          const reply = options.reply?.('.');
          if (reply !== null) held.push(reply ?? '250 2.0.0 queued');
          if (!options.pipelining || newline < 0) flush();
          continue;
        }
        commands.push(line);
        if (!options.pipelining && buffer.length > 0) violations++;
        const scripted = options.reply?.(line);
        const reply = scripted === undefined ? defaultReply(line, options) : scripted;
        if (reply === null) continue;
        held.push(reply);
        if (/^DATA$/i.test(line) && reply.startsWith('354')) inData = true;
        if (!options.pipelining || groupEnd.test(line)) flush();
        if ((options.breakTls || options.stallTls) && /^STARTTLS$/i.test(line)) tlsHello = true;
        if (/^QUIT$/i.test(line) || reply.startsWith('421')) {
          flush();
          socket.end();
          return;
        }
      }
    });
    function flush(): void {
      if (held.length > 0) socket.write(held.map((reply) => `${reply}\r\n`).join(''));
      held = [];
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return {
    port: address.port,
    commands,
    messages,
    get violations() {
      return violations;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function defaultReply(line: string, options: ScriptedSmtpOptions): string {
  if (/^EHLO /i.test(line)) {
    const keywords = [...(options.pipelining ? ['PIPELINING'] : []), ...(options.extensions ?? [])];
    return ['scripted.test', ...keywords]
      .map((text, i, all) => `250${i === all.length - 1 ? ' ' : '-'}${text}`)
      .join('\r\n');
  }
  if (/^DATA$/i.test(line)) return '354 go ahead';
  if (/^STARTTLS$/i.test(line)) return '220 2.0.0 ready to start TLS';
  if (/^QUIT$/i.test(line)) return '221 bye';
  return '250 2.0.0 ok';
}
