import { describe, expect, it } from 'vitest';
import { defaultVerdict } from './default-verdict.ts';
import { localFailure, parseSmtpReply } from './smtp-reply.ts';

describe('defaultVerdict', () => {
  it.each([
    [
      '550 5.1.1 <unknown@example.test>: Recipient address rejected: User unknown in virtual mailbox table',
      'hard',
      'user_unknown',
      'userunknown',
    ],
    ['550 5.1.2 Host unknown', 'hard', 'invalid_domain', 'hostunknown'],
    ['452 4.2.2 Mailbox full', 'soft', 'mailbox_full', 'mailboxfull'],
    ['552 5.2.2 <full@example.test>: mailbox full', 'soft', 'mailbox_full', 'mailboxfull'],
    ['421 4.7.0 Too many messages, slow down', 'soft', 'refused', 'ratelimited'],
    ['451 4.3.0 Temporary local problem', 'soft', 'not_defined', 'undefined'],
    ['554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org', 'hard', 'refused', 'rejected'],
    ['550 Requested action not taken', 'hard', 'not_defined', 'undefined'],
    ['450 Try later', 'soft', 'not_defined', 'undefined'],
  ])('%s -> %s %s/%s', (raw, type, reason, category) => {
    expect(defaultVerdict(parseSmtpReply(raw))).toEqual({
      type,
      reason,
      category,
      ruleId: 'default',
      packVersion: null,
    });
  });

  it.each([
    ['connection_refused', 'soft', 'unreachable', 'networkerror'],
    ['timeout', 'soft', 'unreachable', 'networkerror'],
    ['null_mx', 'hard', 'invalid_domain', 'hostunknown'],
    ['domain_not_found', 'hard', 'invalid_domain', 'hostunknown'],
    ['dns_temporary', 'soft', 'unreachable', 'networkerror'],
  ] as const)('local failure %s -> %s %s/%s', (local, type, reason, category) => {
    expect(defaultVerdict(localFailure(local, 'x'))).toEqual({
      type,
      reason,
      category,
      ruleId: `local.${local}`,
      packVersion: null,
    });
  });
});

describe('parseSmtpReply', () => {
  it('joins multi-line replies and keeps the first code and enhanced status', () => {
    expect(
      parseSmtpReply(
        '550-5.1.1 The email account that you tried to reach does not exist.\n550 5.1.1 https://support.example/?p=NoSuchUser',
      ),
    ).toEqual({
      code: 550,
      enhanced: '5.1.1',
      text: 'The email account that you tried to reach does not exist. https://support.example/?p=NoSuchUser',
    });
  });
  it('accepts replies without enhanced status', () => {
    expect(parseSmtpReply('250 OK id=1')).toEqual({ code: 250, enhanced: null, text: 'OK id=1' });
  });
  it('limits very long text', () => {
    expect(parseSmtpReply(`550 ${'x'.repeat(5_000)}`).text.length).toBe(1_000);
  });
});
