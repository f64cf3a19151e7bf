import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bounceCorpusFile } from '../../test/support/corpus.ts';
import { splitMailbox } from './mailbox-file.ts';
import { parseBounceMessages } from './parse-bounce.ts';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');

describe('a file of bounces saved as a mailbox (RFC 4155)', () => {
  it('is split at each From line (sender and date), with or without an empty line before it', () => {
    const raw = Buffer.from(
      'From MAILER-DAEMON  Thu Apr 29 23:34:45 2015\nSubject: one\n\nbody\nFrom inside a body line\n\nFrom double-bounce@example.com  Thu Jul  2 12:05:05 2020\r\nSubject: two\r\n\r\nbody 2\r\n--b--\nFrom MAILER-DAEMON Fri Jul  3 01:02:03 2020\nSubject: three\n',
    );
    expect(splitMailbox(raw).map(text)).toEqual([
      'Subject: one\n\nbody\nFrom inside a body line\n\n',
      'Subject: two\r\n\r\nbody 2\r\n--b--\n',
      'Subject: three\n',
    ]);
  });

  it('leaves a single message alone', () => {
    const raw = Buffer.from('Subject: one\n\nFrom here on\n\nFrom the body\n');
    expect(splitMailbox(raw)).toEqual([raw]);
  });

  it('gives every report of the corpus mailboxes its recipients (Postfix, two reports per file)', async () => {
    for (const [file, recipients] of [
      ['rfc3464-28.eml', ['kijitora@neko.example.jp', 'info@neko.example.jp']],
      // The second is Postfix's postmaster copy of the same failure.
      ['rhost-cox-01.eml', ['recipient55@cox.net', 'recipient55@cox.net']],
    ] as const) {
      const messages = await parseBounceMessages(readFileSync(bounceCorpusFile(file)));
      expect(messages).toHaveLength(2);
      expect(messages.flatMap((m) => m.recipients.map((r) => r.recipient))).toEqual(recipients);
    }
  });
});
