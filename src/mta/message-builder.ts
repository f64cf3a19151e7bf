import { randomId } from '../common/ids.ts';
import {
  encodeBase64Lines,
  encodeDisplayName,
  encodeHeaderWords,
  encodeQuotedPrintable,
  isSevenBitSafe,
  mostlyNonAscii,
  toCrlf,
} from './mime-encoding.ts';

// Builds one RFC 5322 message per recipient by string concatenation (no streams, no MIME tree):
// it runs once per message on the hot path. Pure apart from the Message-ID counter.

export interface MessageInput {
  logId: number;
  fromAddress: string;
  fromName: string | null;
  replyTo: string | null;
  to: string;
  subject: string;
  html: string | null;
  text: string | null;
  /** Epoch ms for the Date header. */
  date: number;
  bounceDomain: string;
}

export interface BuiltMessage {
  /** VERP: bounce+<delivery log id>-<mac>@<bounce domain>, so a bounce names the log it is about. */
  envelopeFrom: string;
  recipient: string;
  messageId: string;
  /** "Name: value" lines (folded lines keep their CRLF + space inside), in order, without DKIM. */
  headers: string[];
  /** CRLF line breaks, ends with CRLF. */
  body: string;
}

export interface MessageBuilder {
  build(input: MessageInput): BuiltMessage;
}

export interface MessageBuilderOptions {
  /** The envelope sender of a log: the signed VERP address (src/bounce/verp.ts); default unsigned. */
  envelopeSender?(logId: number, bounceDomain: string): string;
}

export function verpAddress(logId: number, bounceDomain: string): string {
  return `bounce+${logId}@${bounceDomain}`;
}

/**
 * Personalization values end up in headers; a CR or LF in them would start a new header (or the
 * body). Every run of them becomes one space, and NULs are dropped.
 */
export function sanitizeHeaderValue(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').replace(/\0/g, '');
}

export function createMessageBuilder(options: MessageBuilderOptions = {}): MessageBuilder {
  const envelopeSender = options.envelopeSender ?? verpAddress;
  // Unique without a random draw per message: a per-builder random part and a counter.
  const idPrefix = randomId(9).replace(/[-_]/g, 'x');
  let counter = 0;
  let cachedSecond = -1;
  let cachedDate = '';
  const dateHeader = (ms: number): string => {
    const second = Math.floor(ms / 1_000);
    if (second !== cachedSecond) {
      cachedSecond = second;
      cachedDate = formatRfc5322Date(ms);
    }
    return cachedDate;
  };

  return {
    build(input) {
      const fromAddress = sanitizeHeaderValue(input.fromAddress);
      const to = sanitizeHeaderValue(input.to);
      const fromDomain = fromAddress.slice(fromAddress.lastIndexOf('@') + 1) || 'herald.invalid';
      counter++;
      const messageId = `<${input.logId}.${counter.toString(36)}.${idPrefix}@${fromDomain}>`;
      const boundary = `----=_herald_${idPrefix}_${counter.toString(36)}`;
      const headers = [
        `From: ${input.fromName ? `${encodeDisplayName(sanitizeHeaderValue(input.fromName))} <${fromAddress}>` : fromAddress}`,
        `To: ${to}`,
        `Subject: ${encodeHeaderWords(sanitizeHeaderValue(input.subject))}`,
        `Date: ${dateHeader(input.date)}`,
        `Message-ID: ${messageId}`,
        'MIME-Version: 1.0',
      ];
      if (input.replyTo) headers.push(`Reply-To: ${sanitizeHeaderValue(input.replyTo)}`);
      // Lets asynchronous bounce handling find the log from the headers a DSN quotes back.
      headers.push(`X-Herald-Log-Id: ${input.logId}`);

      let body: string;
      if (input.text !== null && input.html !== null) {
        const text = encodePart(input.text, boundary);
        const html = encodePart(input.html, boundary);
        headers.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
        body =
          `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: ${text.encoding}\r\n\r\n${text.content}\r\n` +
          `--${boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: ${html.encoding}\r\n\r\n${html.content}\r\n` +
          `--${boundary}--\r\n`;
      } else {
        const part = encodePart(input.html ?? input.text ?? '', boundary);
        headers.push(`Content-Type: text/${input.html !== null ? 'html' : 'plain'}; charset=utf-8`);
        headers.push(`Content-Transfer-Encoding: ${part.encoding}`);
        body = `${part.content}\r\n`;
      }
      return { envelopeFrom: envelopeSender(input.logId, input.bounceDomain), recipient: to, messageId, headers, body };
    },
  };
}

function encodePart(content: string, boundary: string): { encoding: string; content: string } {
  // 7bit when it is safe: the cheapest encoding, and readable by anyone looking at the raw message.
  if (isSevenBitSafe(content) && !content.includes(boundary))
    return { encoding: '7bit', content: stripFinalBreak(toCrlf(content)) };
  if (mostlyNonAscii(content)) return { encoding: 'base64', content: encodeBase64Lines(content) };
  return { encoding: 'quoted-printable', content: stripFinalBreak(encodeQuotedPrintable(content)) };
}

function stripFinalBreak(content: string): string {
  return content.endsWith('\r\n') ? content.slice(0, -2) : content;
}

export function serializeMessage(headers: readonly string[], body: string): string {
  return `${headers.join('\r\n')}\r\n\r\n${body}`;
}

const weekdays = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time in UTC: "Thu, 01 Jan 2026 00:00:00 +0000". */
export function formatRfc5322Date(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${weekdays[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
