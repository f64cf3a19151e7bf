// @ts-check
import { randomBytes } from 'node:crypto';
import {
  encodeBase64Lines,
  encodeDisplayName,
  encodeHeaderWords,
  encodeQuotedPrintable,
  isSevenBitSafe,
  mostlyNonAscii,
  toCrlf,
} from './mime-encoding.mjs';

// Builds one RFC 5322 message per recipient by string concatenation (no streams, no MIME tree):
// it runs once per message on the hot path. Pure apart from the Message-ID counter. Plain
// JavaScript (checked by tsc through its JSDoc), as dkim-core.mjs: the signing workers
// (dkim-worker.mjs) build the messages they sign with it, off the MTA's main thread.

/**
 * @typedef {object} MessageInput
 * @property {number} logId
 * @property {string} fromAddress
 * @property {string | null} fromName
 * @property {string | null} replyTo
 * @property {string} to
 * @property {string} subject
 * @property {string | null} html
 * @property {string | null} text
 * @property {number} date Epoch ms for the Date header.
 * @property {string} bounceDomain
 */

/**
 * @typedef {object} BuiltMessage
 * @property {string} envelopeFrom VERP: bounce+<delivery log id>-<mac>@<bounce domain>, so a bounce names the log it is about.
 * @property {string} recipient
 * @property {string} messageId
 * @property {string[]} headers "Name: value" lines (folded lines keep their CRLF + space inside), in order, without DKIM.
 * @property {string} body CRLF line breaks, ends with CRLF.
 */

/**
 * @typedef {object} MessageBuilder
 * @property {(input: MessageInput) => BuiltMessage} build
 */

/**
 * @typedef {object} MessageBuilderOptions
 * @property {(logId: number, bounceDomain: string) => string} [envelopeSender] The envelope sender of a log: the signed VERP address (src/bounce/verp.ts); default unsigned.
 */

/**
 * @param {number} logId
 * @param {string} bounceDomain
 */
export function verpAddress(logId, bounceDomain) {
  return `bounce+${logId}@${bounceDomain}`;
}

/**
 * Personalization values end up in headers; a CR or LF in them would start a new header (or the
 * body). Every run of them becomes one space, and NULs are dropped.
 * @param {string} value
 */
export function sanitizeHeaderValue(value) {
  return value.replace(/[\r\n]+/g, ' ').replace(/\0/g, '');
}

/**
 * @param {MessageBuilderOptions} [options]
 * @returns {MessageBuilder}
 */
export function createMessageBuilder(options = {}) {
  const envelopeSender = options.envelopeSender ?? verpAddress;
  // Unique without a random draw per message: a per-builder random part and a counter.
  const idPrefix = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x');
  let counter = 0;
  let cachedSecond = -1;
  let cachedDate = '';
  /** @param {number} ms */
  const dateHeader = (ms) => {
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
        `From: ${input.fromName ? fromWithName(encodeDisplayName(sanitizeHeaderValue(input.fromName)), fromAddress) : fromAddress}`,
        `To: ${to}`,
        `Subject: ${encodeHeaderWords(sanitizeHeaderValue(input.subject))}`,
        `Date: ${dateHeader(input.date)}`,
        `Message-ID: ${messageId}`,
        'MIME-Version: 1.0',
      ];
      if (input.replyTo) headers.push(`Reply-To: ${sanitizeHeaderValue(input.replyTo)}`);
      // Lets asynchronous bounce handling find the log from the headers a DSN quotes back.
      headers.push(`X-Herald-Log-Id: ${input.logId}`);

      let body;
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

/**
 * "Name <address>"; after an encoded name, the address goes on a folded line of its own, so that
 * the line holding the last encoded word stays within RFC 2047's 76 characters.
 * @param {string} name
 * @param {string} address
 */
function fromWithName(name, address) {
  return name.startsWith('=?') ? `${name}\r\n <${address}>` : `${name} <${address}>`;
}

/**
 * @param {string} content
 * @param {string} boundary
 * @returns {{ encoding: string, content: string }}
 */
function encodePart(content, boundary) {
  // 7bit when it is safe: the cheapest encoding, and readable by anyone looking at the raw message.
  if (isSevenBitSafe(content) && !content.includes(boundary))
    return { encoding: '7bit', content: stripFinalBreak(toCrlf(content)) };
  if (mostlyNonAscii(content)) return { encoding: 'base64', content: encodeBase64Lines(content) };
  return { encoding: 'quoted-printable', content: stripFinalBreak(encodeQuotedPrintable(content)) };
}

/** @param {string} content */
function stripFinalBreak(content) {
  return content.endsWith('\r\n') ? content.slice(0, -2) : content;
}

/**
 * @param {readonly string[]} headers
 * @param {string} body
 */
export function serializeMessage(headers, body) {
  return `${headers.join('\r\n')}\r\n\r\n${body}`;
}

const weekdays = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * RFC 5322 §3.3 date-time in UTC: "Thu, 01 Jan 2026 00:00:00 +0000".
 * @param {number} ms
 */
export function formatRfc5322Date(ms) {
  const d = new Date(ms);
  /** @param {number} n */
  const pad = (n) => String(n).padStart(2, '0');
  return `${weekdays[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
