import { describe, expect, it } from 'vitest';
import { normalizeReplyText, patternToRegex, replyShape } from './qualification-normalize.ts';

describe('normalizeReplyText', () => {
  const cases: Array<[string, string]> = [
    [
      '<pat@example.test>: Recipient address rejected: Access denied',
      '<address>: recipient address rejected: access denied',
    ],
    [
      'Message 1A2b3C4d5E6f rejected at 12:04:59 on 2026-03-01 from 192.0.2.153',
      'message <id> rejected at <time> on <date> from <ip>',
    ],
    [
      'Daily quota of 500 messages exceeded, retry in 3600 seconds',
      'daily quota of <n> messages exceeded, retry in <n> seconds',
    ],
    ['See https://postmaster.example.test/errors?id=42 for details', 'see <url> for details'],
    ['Sent Tue, 3 Mar 2026 08:00:00 +0000', 'sent <date> <time>'],
  ];
  for (const [input, expected] of cases) it(input, () => expect(normalizeReplyText(input)).toBe(expected));

  it('gives the same signature to replies that differ only in variable parts', () => {
    const a = replyShape(550, '5.7.1', 'Message 7F3AB2C1D9 from 192.0.2.1 refused by policy 17 for <a@x.test>');
    const b = replyShape(550, '5.7.1', 'Message 99ZZ11QQ8A from 198.51.100.7 refused by policy 3 for <b@y.test>');
    expect(a.signature).toBe(b.signature);
    expect(
      replyShape(554, '5.7.1', 'Message 7F3AB2C1D9 from 192.0.2.1 refused by policy 17 for <a@x.test>').signature,
    ).not.toBe(a.signature);
  });

  it('turns a shape into a regex that matches the original reply', () => {
    const original = 'Message 7F3AB2C1D9 (size 1234) refused by policy [p17] for <a@x.test>';
    const regex = new RegExp(patternToRegex(normalizeReplyText(original)), 'i');
    expect(regex.test(original)).toBe(true);
    expect(regex.test('Message accepted')).toBe(false);
  });
});
