// Frames the bytes an SMTP server sends into whole replies (RFC 5321 §4.2: "250-first" lines
// continue a reply, "250 last" ends it), for a client that may have several commands in flight
// (RFC 2920 pipelining): replies are handed out in the order they arrive, one per `next()`.
// A hostile or broken server cannot make it buffer without bound: a line longer than
// `maxLineLength`, a reply of more than `maxLines` lines or `maxReplyCharacters` characters, or a
// line that is not a reply line, is a protocol error, and so are more than `maxUnclaimedReplies`
// replies nobody asked for yet.
// A reply whose lines disagree on the code is one too: which of them the server meant is unknown.

/** RFC 5321 §4.5.3.1.5 says 512 octets; real servers exceed it, a little. */
export const maxReplyLineLength = 4_096;
export const maxReplyLines = 100;
/**
 * All lines of one reply together. A real one is a few lines (an EHLO reply under 1 KiB, a
 * provider's multi-line refusal about 2): 100 lines of 4,096 was 400 KB a reply, and eight
 * unclaimed ones held 3.2 MB per connection while it idled (318 MB for 100 connections).
 */
export const maxReplyCharacters = 16_384;
/**
 * Whole replies held before `next()` asks for them. A client has at most a pipelined group of
 * commands in flight (RFC 2920) and asks for their replies as it writes them; a server flooding
 * "250 ok" lines that no command asked for grew the MTA by 227 MiB in 3 s on one connection.
 */
export const maxUnclaimedReplies = 8;

const replyLinePattern = /^\d{3}(?:[ -]|$)/;

export class SmtpReplyReader {
  #partial = '';
  #lines: string[] = [];
  #replyCharacters = 0;
  readonly #replies: string[] = [];
  readonly #waiters: Array<(reply: string | null) => void> = [];
  #ended = false;
  #error: string | null = null;

  /** Why the stream was refused (a protocol error), once it was; `push` ignores input after that. */
  get error(): string | null {
    return this.#error;
  }

  /** Adds received text; returns false (and ends the reader) when the server broke the protocol. */
  push(text: string): boolean {
    if (this.#ended) return this.#error === null;
    let data = this.#partial + text;
    let newline = data.indexOf('\n');
    while (newline >= 0) {
      const line = data.charCodeAt(newline - 1) === 13 ? data.slice(0, newline - 1) : data.slice(0, newline);
      data = data.slice(newline + 1);
      if (!this.#addLine(line)) return false;
      newline = data.indexOf('\n');
    }
    if (data.length > maxReplyLineLength)
      return this.#fail(`a reply line longer than ${maxReplyLineLength} characters`);
    this.#partial = data;
    return true;
  }

  /** The next whole reply (its lines joined by "\n"), or null once the connection ended without one. */
  next(): Promise<string | null> {
    const reply = this.#replies.shift();
    if (reply !== undefined) return Promise.resolve(reply);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The connection ended: every reader still waiting gets null. */
  end(): void {
    this.#ended = true;
    for (const waiter of this.#waiters.splice(0)) waiter(null);
  }

  #addLine(line: string): boolean {
    if (line.length > maxReplyLineLength)
      return this.#fail(`a reply line longer than ${maxReplyLineLength} characters`);
    if (!replyLinePattern.test(line)) return this.#fail(`a line that is not an SMTP reply: "${line.slice(0, 80)}"`);
    // RFC 5321 §4.2.1: every line of a reply has the same code. The client reads the first line's,
    // so "250-ok" then "550 rejected" after the dot counted a refused message as delivered.
    const first = this.#lines[0];
    if (first !== undefined && !line.startsWith(first.slice(0, 3)))
      return this.#fail(
        `a reply whose lines have different codes: "${first.slice(0, 80)}" then "${line.slice(0, 80)}"`,
      );
    this.#replyCharacters += line.length;
    if (this.#replyCharacters > maxReplyCharacters)
      return this.#fail(`a reply longer than ${maxReplyCharacters} characters`);
    this.#lines.push(line);
    if (line.charCodeAt(3) === 45 /* '-' */) {
      if (this.#lines.length >= maxReplyLines) return this.#fail(`a reply of more than ${maxReplyLines} lines`);
      return true;
    }
    const reply = this.#lines.length === 1 ? line : this.#lines.join('\n');
    this.#lines = [];
    this.#replyCharacters = 0;
    const waiter = this.#waiters.shift();
    if (waiter) waiter(reply);
    else if (this.#replies.length >= maxUnclaimedReplies)
      return this.#fail(`more than ${maxUnclaimedReplies} replies to commands it was not sent`);
    else this.#replies.push(reply);
    return true;
  }

  #fail(reason: string): false {
    this.#error = `the server sent ${reason}`;
    this.end();
    return false;
  }
}
