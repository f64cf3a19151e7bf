import { describe, expect, it } from 'vitest';
import {
  admitTransaction,
  decideRcptReply,
  formatReply,
  greylistDecision,
  splitAddress,
  type RcptRequest,
} from './sink-behaviour.ts';

const request = (localPart: string): RcptRequest => ({
  sender: 's@x.test',
  address: `${localPart}@x.test`,
  localPart,
  domain: 'x.test',
  now: 0,
  state: { messagesAccepted: 0, acceptedCount: () => 0 },
});

describe('sink behaviour decisions', () => {
  it('matches local-part prefixes case-insensitively, first rule wins, others accepted', () => {
    const behaviour = {
      rcptRules: [
        { localPartPrefix: 'unknown', reply: { code: 550, enhanced: '5.1.1', text: 'No such user' } },
        { localPartPrefix: 'un', reply: { code: 450, text: 'never reached for unknown*' } },
      ],
    };
    expect(decideRcptReply(behaviour, request('Unknown12')).code).toBe(550);
    expect(decideRcptReply(behaviour, request('under')).code).toBe(450);
    expect(decideRcptReply(behaviour, request('alice')).code).toBe(250);
  });

  it('admits N transactions per one-minute window, then opens a new window', () => {
    let window = { startedAt: 0, count: 0 };
    const admitted: boolean[] = [];
    for (const now of [1_000, 2_000, 3_000, 60_999, 61_000, 61_001]) {
      const decision = admitTransaction(window, 2, now);
      window = decision.window;
      admitted.push(decision.admitted);
    }
    expect(admitted).toEqual([true, true, false, false, true, true]);
  });

  it('defers a first greylist attempt and passes once the delay has elapsed', () => {
    expect(greylistDecision(undefined, 1000, 5)).toEqual({ defer: true, firstSeenAt: 5 });
    expect(greylistDecision(5, 1000, 1004)).toEqual({ defer: true, firstSeenAt: 5 });
    expect(greylistDecision(5, 1000, 1005)).toEqual({ defer: false, firstSeenAt: 5 });
    expect(greylistDecision(5, 0, 5)).toEqual({ defer: false, firstSeenAt: 5 });
  });

  it('splits at the last @ and formats replies with enhanced codes', () => {
    expect(splitAddress('"a@b"@Example.TEST')).toEqual({ localPart: '"a@b"', domain: 'example.test' });
    expect(formatReply({ code: 452, enhanced: '4.2.2', text: 'Mailbox full' })).toBe('452 4.2.2 Mailbox full\r\n');
    expect(formatReply({ code: 220, text: 'hi' })).toBe('220 hi\r\n');
  });
});
