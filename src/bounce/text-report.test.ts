import { describe, expect, it } from 'vitest';
import { replyFacts } from './text-report.ts';

describe('replyFacts: the SMTP command a transcript or a report names', () => {
  it.each([
    ['    >>> RCPT To:<mikeneko@example.co.jp>\n    <<< 550 Requested User Mailbox not found.', 'rcpt'],
    ['192.0.2.153 does not like recipient.\nRemote host said: 550 5.1.1 <a@example.jp>... User Unknown', 'rcpt'],
    ['host mx.example.jp[192.0.2.1] said: 550 No such user (in reply to RCPT TO command)', 'rcpt'],
    ['SMTP error from remote mail server after RCPT TO:<a@example.jp>: 550 Unrouteable address', 'rcpt'],
    ['192.0.2.153 failed after I sent the message.\nRemote host said: 554 5.7.1 Spam', 'dot'],
    ['host mx.example.jp said: 550 Unknown user (in reply to end of DATA command)', 'dot'],
    ['>>> MAIL From:<a@example.org> <<< 553 sender rejected', 'mail'],
    // Postfix: the greeting banner was not 2yz (smtp_proto.c).
    ['host mx.example.net[192.0.2.1] refused to talk to me: 421 Service not available', 'connect'],
    // Reports wrap their text; the wording is read across the line break.
    ['host smtpz4.laposte.net[192.0.2.1] refused to\n    talk to me: 550 5.5.0 Service refuse.', 'connect'],
    ['host mx.example.jp[192.0.2.1] said: 550 Unknown user (in reply to end of\n    DATA command)', 'dot'],
    // A greeting names the server after the code (RFC 5321 §4.2).
    ['554 st11p00im-smtpin013.me.com ESMTP not accepting connections', 'connect'],
    ['220-laposte 421 4.2.1 mx.laposte.net ESMTP Service refuse', 'connect'],
  ])('%s → %s', (text, phase) => {
    expect(replyFacts(text).phase).toBe(phase);
  });

  it('reads no greeting in a reply that names a host after its text starts', () => {
    expect(replyFacts('550 5.1.1 <a@example.jp>: Recipient address rejected: User unknown').phase).toBeUndefined();
    expect(replyFacts('554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked').phase).toBeUndefined();
  });

  it('says nothing for ">>> DATA": with PIPELINING the refusals of RCPT TO come after it', () => {
    expect(
      replyFacts('... while talking to mx.example.org.:\n>>> DATA\n<<< 550 5.1.1 <a@example.org>... User unknown')
        .phase,
    ).toBeUndefined();
  });
});
