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
  ])('%s → %s', (text, phase) => {
    expect(replyFacts(text).phase).toBe(phase);
  });

  it('says nothing for ">>> DATA": with PIPELINING the refusals of RCPT TO come after it', () => {
    expect(
      replyFacts('... while talking to mx.example.org.:\n>>> DATA\n<<< 550 5.1.1 <a@example.org>... User unknown')
        .phase,
    ).toBeUndefined();
  });
});
