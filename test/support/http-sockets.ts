import { connect, type Socket } from 'node:net';

// Raw HTTP/1.1 clients on real sockets, bound to a chosen loopback address (127.0.0.2, 127.0.0.3 …
// are distinct client addresses): what an attacker holding connections does, and what a
// legitimate client sees meanwhile.

export interface HeldSocket {
  socket: Socket;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
  /** Resolves with what was received so far once an answer's head is in. */
  answered: Promise<string>;
}

/** Connects from `from` to 127.0.0.1:`port`; resolves once connected (sends nothing). */
export function openFrom(from: string, port: number, opened: Socket[]): Promise<HeldSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: from });
    opened.push(socket);
    let text = '';
    socket.on('error', () => {});
    let answer: (value: string) => void = () => {};
    const answered = new Promise<string>((done) => {
      answer = done;
    });
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) answer(text);
    });
    const closed = new Promise<string>((done) => socket.once('close', () => done(text)));
    socket.once('connect', () => resolve({ socket, closed, answered }));
    socket.once('close', () => answer(text));
    closed.then(() => reject(new Error(`closed before connecting from ${from}`)));
  });
}

/** The head of GET `path`: its request line and header lines, each ending in CRLF, without the blank line. */
export function getHead(path: string, headers: Record<string, string> = {}): string {
  const lines = Object.entries({ host: '127.0.0.1', ...headers }).map(([name, value]) => `${name}: ${value}\r\n`);
  return `GET ${path} HTTP/1.1\r\n${lines.join('')}`;
}

/** A connection from `from` that has had one answer to the request `head` (getHead) and stays open (keep-alive). */
export async function keptAliveFrom(from: string, port: number, head: string, opened: Socket[]): Promise<HeldSocket> {
  const held = await openFrom(from, port, opened);
  held.socket.write(`${head}\r\n`);
  await held.answered;
  return held;
}

/** The status line of the answer to the request `head` (getHead) from `from` on a fresh connection. */
export async function statusFrom(from: string, port: number, head: string, opened: Socket[]): Promise<string> {
  const held = await openFrom(from, port, opened);
  held.socket.write(`${head}connection: close\r\n\r\n`);
  return (await held.answered).split('\r\n')[0] ?? '';
}
