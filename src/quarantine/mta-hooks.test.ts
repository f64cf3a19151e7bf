import { describe, expect, it } from 'vitest';
import { defaultVerdict } from '../bounce/default-verdict.ts';
import { localFailure, parseSmtpReply, type SmtpReply } from '../bounce/smtp-reply.ts';
import type { FailedOutcome } from '../mta/outcome.ts';
import { addressEventOf } from './mta-hooks.ts';

function failed(reply: SmtpReply): FailedOutcome {
  return {
    kind: 'failed',
    logId: 9,
    deliveryId: 2,
    email: 'pat@example.test',
    mxHost: 'mx.example.test',
    at: Date.UTC(2026, 2, 1),
    reply,
    verdict: defaultVerdict(reply),
    expired: false,
  };
}

describe('address events of MTA failures', () => {
  it('counts what the server said about the address, not our own message being too large or unrenderable', () => {
    expect(addressEventOf(failed(parseSmtpReply('550 5.1.1 unknown user')))).toMatchObject({
      email: 'pat@example.test',
      verdict: { type: 'hard', reason: 'user_unknown' },
    });
    const tooLarge = localFailure(
      'message_too_large',
      'the message is 2019 bytes, over the 1000 the MX accepts',
      '5.3.4',
    );
    expect(addressEventOf(failed(tooLarge))).toBeUndefined();
    expect(addressEventOf(failed(localFailure('content_error', 'template error')))).toBeUndefined();
  });
});
