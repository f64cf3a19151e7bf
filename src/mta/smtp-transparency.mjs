// @ts-check
// The message as it goes after DATA (RFC 5321 §4.5.2 and §2.3.8): lines end with CRLF (a bare CR
// or LF is converted — the message builder writes CRLF already, so a signed message is never
// changed), a line that starts with "." gets one more, and the data ends with CRLF "." CRLF.
// Plain JavaScript, as dkim-core.mjs: the signing workers (dkim-worker.mjs) run it too.

const bareLineBreak = /\r(?!\n)|(?<!\r)\n/;
const lineStartDot = /(^|\n)\./g;

/**
 * @param {string} message
 * @returns {string}
 */
export function smtpDataOf(message) {
  let data = bareLineBreak.test(message) ? message.replace(/\r\n|\r|\n/g, '\r\n') : message;
  if (data.charCodeAt(0) === 46 || data.includes('\n.')) data = data.replace(lineStartDot, '$1..');
  return data.length === 0 || data.endsWith('\r\n') ? `${data}.\r\n` : `${data}\r\n.\r\n`;
}
