import PostalMime from 'postal-mime';
import { describe, expect, it } from 'vitest';
import { createMessageBuilder, formatRfc5322Date, serializeMessage, type MessageInput } from './message-builder.mjs';

const base: MessageInput = {
  logId: 42,
  fromAddress: 'news@brand.test',
  fromName: 'Brand News',
  replyTo: 'care@brand.test',
  to: 'alice@example.test',
  subject: 'Hello Alice',
  html: '<p>Hello <b>Alice</b></p>',
  text: 'Hello Alice',
  date: Date.UTC(2026, 0, 2, 3, 4, 5),
  bounceDomain: 'bounces.brand.test',
};

function headerBlock(raw: string): string {
  return raw.slice(0, raw.indexOf('\r\n\r\n'));
}

describe('message builder', () => {
  it('writes VERP envelope, Message-ID, Date, X-Herald-Log-Id and a multipart/alternative body', async () => {
    const built = createMessageBuilder().build(base);
    expect(built.envelopeFrom).toBe('bounce+42@bounces.brand.test');
    expect(built.recipient).toBe('alice@example.test');
    expect(built.messageId).toMatch(/^<42\.[a-z0-9]+\.[A-Za-z0-9]+@brand\.test>$/);
    const raw = serializeMessage(built.headers, built.body);
    expect(raw).not.toMatch(/[^\r]\n/);
    const headers = headerBlock(raw);
    expect(headers).toContain('Date: Fri, 02 Jan 2026 03:04:05 +0000');
    expect(headers).toContain('X-Herald-Log-Id: 42');
    expect(headers).toContain('From: Brand News <news@brand.test>');
    const parsed = await PostalMime.parse(raw);
    expect(parsed.subject).toBe('Hello Alice');
    expect(parsed.text?.trim()).toBe('Hello Alice');
    expect(parsed.html?.trim()).toBe('<p>Hello <b>Alice</b></p>');
    expect(parsed.messageId).toBe(built.messageId);
    expect(parsed.replyTo?.[0]?.address).toBe('care@brand.test');
  });

  it('keeps every header line holding an encoded word within 76 characters (RFC 2047 §2), and the words decode', async () => {
    const subject = `Ünïcödé sübject — ${'très long '.repeat(12)}fin`;
    const fromName = `Zoë ${'Ñandú '.repeat(10)}Ltd`;
    const built = createMessageBuilder().build({ ...base, subject, fromName });
    const raw = serializeMessage(built.headers, built.body);
    const encodedLines = headerBlock(raw)
      .split('\r\n')
      .filter((line) => line.includes('=?UTF-8?B?'));
    expect(encodedLines.length).toBeGreaterThan(4);
    for (const line of encodedLines) expect(line.length).toBeLessThanOrEqual(76);
    const parsed = await PostalMime.parse(raw);
    expect(parsed.subject).toBe(subject);
    expect(parsed.from).toMatchObject({ name: fromName, address: 'news@brand.test' });
  });

  it('folds a long ASCII subject without changing it, even one with a run of 900+ characters and no space', async () => {
    // A personalized value (a pasted URL, a token) can make a subject longer than a line may be.
    for (const subject of [`${'word '.repeat(300)}end`, 'x'.repeat(2_000), `Hi ${'y'.repeat(1_000)} there`]) {
      const built = createMessageBuilder().build({ ...base, subject });
      const raw = serializeMessage(built.headers, built.body);
      for (const line of headerBlock(raw).split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
      expect((await PostalMime.parse(raw)).subject).toBe(subject);
    }
  });

  it('gives every message its own Message-ID', () => {
    const builder = createMessageBuilder();
    expect(builder.build(base).messageId).not.toBe(builder.build(base).messageId);
  });

  it('never lets CR/LF in personalized values create headers', async () => {
    const built = createMessageBuilder().build({
      ...base,
      subject: 'Hi\r\nBcc: victim@example.test\r\n\r\nbody',
      fromName: 'Evil\nX-Injected: yes',
      replyTo: 'a@b.test\r\nX-Other: 1',
    });
    const headers = headerBlock(serializeMessage(built.headers, built.body));
    expect(headers).not.toMatch(/^Bcc:/im);
    expect(headers).not.toMatch(/^X-Injected:/im);
    expect(headers).not.toMatch(/^X-Other:/im);
    const parsed = await PostalMime.parse(serializeMessage(built.headers, built.body));
    expect(parsed.subject).toBe('Hi Bcc: victim@example.test body');
  });

  it('encodes non-ASCII subjects, names and bodies so they decode back', async () => {
    const text = `Grüße, Zoë! ${'plain words é '.repeat(40)}\nLine two with trailing space \nend=`;
    const built = createMessageBuilder().build({
      ...base,
      subject: 'Réduction de 20 % pour vous, Zoë — 日本語のテキストも少し',
      fromName: 'Équipe',
      html: null,
      text,
    });
    const raw = serializeMessage(built.headers, built.body);
    for (const line of raw.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
    expect(raw).toContain('Content-Transfer-Encoding: quoted-printable');
    const parsed = await PostalMime.parse(raw);
    expect(parsed.subject).toBe('Réduction de 20 % pour vous, Zoë — 日本語のテキストも少し');
    expect(parsed.from?.name).toBe('Équipe');
    expect(parsed.text?.trimEnd()).toBe(text);
  });

  it('uses base64 for mostly non-ASCII bodies and 7bit for plain ASCII', async () => {
    const japanese = createMessageBuilder().build({ ...base, html: null, text: '日本語のテキスト'.repeat(30) });
    expect(japanese.headers).toContain('Content-Transfer-Encoding: base64');
    expect((await PostalMime.parse(serializeMessage(japanese.headers, japanese.body))).text?.trimEnd()).toBe(
      '日本語のテキスト'.repeat(30),
    );
    const ascii = createMessageBuilder().build({ ...base, html: '<p>x</p>', text: null });
    expect(ascii.headers).toContain('Content-Transfer-Encoding: 7bit');
    expect(ascii.headers).toContain('Content-Type: text/html; charset=utf-8');
  });

  it('wraps lines longer than 998 characters', async () => {
    const html = `<p>${'a'.repeat(3_000)}</p>`;
    const built = createMessageBuilder().build({ ...base, html, text: null });
    const raw = serializeMessage(built.headers, built.body);
    for (const line of raw.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
    expect((await PostalMime.parse(raw)).html?.trimEnd()).toBe(html);
  });

  it('formats RFC 5322 dates in UTC', () => {
    expect(formatRfc5322Date(Date.UTC(2026, 11, 31, 23, 59, 9))).toBe('Thu, 31 Dec 2026 23:59:09 +0000');
  });
});

describe('quoted-printable', () => {
  it('round-trips mixed lines: plain long ASCII, trailing spaces, "=", non-ASCII, empty lines', async () => {
    const { encodeQuotedPrintable } = await import('./mime-encoding.mjs');
    const text = [
      `${'abc '.repeat(60)}end`,
      'tail space  ',
      'a=b',
      '',
      'Grüße ☃ '.repeat(20),
      '.starts with dot',
      'x'.repeat(76),
      'y'.repeat(77),
    ].join('\n');
    const encoded = encodeQuotedPrintable(text);
    for (const line of encoded.split('\r\n')) {
      expect(line.length).toBeLessThanOrEqual(76);
      expect(line).not.toMatch(/[ \t]$/);
    }
    const decoded = Buffer.from(
      encoded
        .replace(/=\r\n/g, '')
        .replace(/=([0-9A-F]{2})/g, (_, hexByte: string) => String.fromCharCode(parseInt(hexByte, 16))),
      'latin1',
    ).toString('utf8');
    expect(decoded).toBe(text.replace(/\n/g, '\r\n'));
  });
});
