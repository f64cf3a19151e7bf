import { describe, expect, it } from 'vitest';
import { readMessage } from './mime-reader.ts';
import { walkMime } from './mime-walker.ts';

const LIMITS = {
  maxNestingDepth: 32,
  maxHeaderBytes: 2 * 1024 * 1024,
  maxParts: 1000,
  maxBodyBytes: 1024 * 1024,
  maxDecodedBytes: 2 * 1024 * 1024,
};
const crlf = (text: string): Uint8Array => Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8');

function walk(text: string | Uint8Array) {
  const result = walkMime(typeof text === 'string' ? crlf(text) : text, LIMITS);
  if (result.kind !== 'ok') throw new Error(`walk gave ${result.kind}`);
  return result;
}

const REPORT = `From: MAILER-DAEMON@mx.example.net
Subject: Undelivered Mail
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="=_b(1)"

preamble is ignored
--=_b(1)
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

R=E9ponse: 550 5.1.1 <nobody@example.org> unknown user, this line is long a=
nd soft-broken
--=_b(1)
Content-Type: message/delivery-status
Content-Transfer-Encoding: base64

RmluYWwtUmVjaXBpZW50OiByZmM4MjI7IG5vYm9keUBleGFtcGxlLm9yZw==
CkFjdGlvbjogZmFpbGVk
--=_b(1)
Content-Type: text/rfc822-headers

Message-ID: <abc@example.com>
--=_b(1)--
epilogue is ignored
`;

describe('walkMime', () => {
  it('reads a multipart/report with quoted-printable, base64 (padded per line) and 7bit parts', () => {
    const { headers, leaves } = walk(REPORT);
    expect(headers.find((h) => h.key === 'content-type')?.value).toBe(
      'multipart/report; report-type=delivery-status;\tboundary="=_b(1)"',
    );
    expect(leaves.map((l) => [l.type, l.inline])).toEqual([
      ['text/plain', true],
      ['message/delivery-status', false],
      ['text/rfc822-headers', false],
    ]);
    expect(leaves[0]!.text()).toBe(
      'Réponse: 550 5.1.1 <nobody@example.org> unknown user, this line is long and soft-broken\n',
    );
    expect(leaves[1]!.bytes()).toBe('Final-Recipient: rfc822; nobody@example.org\nAction: failed');
    expect(leaves[2]!.text()).toBe('Message-ID: <abc@example.com>\n');
  });

  it('decodes charsets by label, vendor spellings included, and never fails on an unknown one', () => {
    const jis = Buffer.concat([
      crlf('Content-Type: text/plain; charset="ISO-2022-JP"\n\n'),
      Buffer.from('1b2442245e2441242c1b2842', 'hex'),
    ]);
    expect(walk(jis).leaves[0]!.text()).toBe('まちが\n');
    const sjis = Buffer.concat([crlf('Content-Type: text/plain; charset=x-sjis\n\n'), Buffer.from('82a0', 'hex')]);
    expect(walk(sjis).leaves[0]!.text()).toBe('あ\n');
    const odd = Buffer.concat([
      crlf('Content-Type: text/plain; charset=x-no-such-charset\n\n'),
      Buffer.from('caf\xe9', 'latin1'),
    ]);
    expect(walk(odd).leaves[0]!.text()).toBe('café\n');
  });

  it('decodes at most maxBodyBytes of a part', () => {
    const result = walkMime(
      crlf(`Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n${'QUJD\n'.repeat(100)}`),
      { ...LIMITS, maxBodyBytes: 50 },
    );
    expect(result.kind === 'ok' && result.leaves[0]!.text()).toBe(`${'ABC'.repeat(8)}A`);
  });

  // 400 parts of 60 KB of "QQ=" units (24 MB) had the whole message decoded: 12 s of the inbound
  // role's thread. The parts share one budget, spent in the order their text is asked for.
  it('decodes at most maxDecodedBytes across the parts of a message', () => {
    const part = `--m\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n${'QQ=QQ=\n'.repeat(5)}`;
    const result = walkMime(crlf(`Content-Type: multipart/mixed; boundary=m\n\n${part.repeat(4)}--m--\n`), {
      ...LIMITS,
      maxDecodedBytes: 100,
    });
    // 40 raw bytes (CRLF lines) per part: two parts whole, 20 bytes of the third, none of the fourth.
    expect(result.kind === 'ok' && result.leaves.map((leaf) => leaf.text())).toEqual([
      'A'.repeat(10),
      'A'.repeat(10),
      'A'.repeat(5),
      '',
    ]);
  });

  it('joins format=flowed lines', () => {
    const { leaves } = walk('Content-Type: text/plain; format=flowed\n\n550 mailbox \nunavailable\n-- \nsig\n');
    expect(leaves[0]!.text()).toBe('550 mailbox unavailable\n-- \nsig\n');
  });

  it('keeps text attachments apart from inline text, and takes parts of a digest as messages', () => {
    const { leaves } = walk(`Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain
Content-Disposition: attachment; filename="log.txt"

log
--m
Content-Type: multipart/digest; boundary=d

--d

Subject: quoted
--d--
--m--
`);
    expect(leaves.map((l) => [l.type, l.inline])).toEqual([
      ['text/plain', false],
      ['message/rfc822', false],
    ]);
  });

  it('ignores a multipart whose boundary never appears, and ends unterminated parts at the end', () => {
    expect(
      walk('Content-Type: multipart/mixed; boundary="NOPE"\n\n--B1\nContent-Type: text/plain\n\nhello\n').leaves,
    ).toEqual([]);
    const { leaves } = walk(
      'Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: text/plain\n\nno closing boundary',
    );
    expect(leaves[0]!.text()).toBe('no closing boundary\n');
  });

  it('refuses deep nesting, oversized headers and too many parts as values', () => {
    let body = 'Content-Type: text/plain\n\nhello\n';
    for (let i = 0; i < 40; i++)
      body = `Content-Type: multipart/mixed; boundary="n${i}"\n\n--n${i}\n${body}--n${i}--\n`;
    expect(walkMime(crlf(body), LIMITS)).toEqual({
      kind: 'refused',
      error: 'Maximum MIME nesting depth of 32 levels exceeded',
    });
    const huge = crlf(`Subject: ${'x'.repeat(2000)}\n`.repeat(1100));
    expect(walkMime(huge, LIMITS).kind).toBe('refused');
    const parts = crlf(`Content-Type: multipart/mixed; boundary=b\n\n${'--b\n'.repeat(1000)}--b--\n`);
    expect(walkMime(parts, LIMITS)).toEqual({ kind: 'refused', error: 'more than 1000 MIME parts' });
    expect(walkMime(parts, { ...LIMITS, maxParts: 1001 }).kind).toBe('ok');
  });

  it('leaves RFC 2231 boundaries and Content-Type comments to postal-mime', async () => {
    const split = `Content-Type: multipart/mixed; boundary*0="ab"; boundary*1="cd"\n\n--abcd\nContent-Type: text/plain\n\nsplit boundary\n--abcd--\n`;
    expect(walkMime(crlf(split), LIMITS).kind).toBe('unsupported');
    expect(walkMime(crlf('Content-Type: text/plain (a comment); charset=utf-8\n\nx\n'), LIMITS).kind).toBe(
      'unsupported',
    );
    const read = await readMessage(crlf(`From: a@example.org\n${split}`));
    expect(read.ok && read.parts.text).toBe('split boundary\n');
  });
});
