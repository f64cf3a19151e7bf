import { describe, expect, it } from 'vitest';
import { localFailure, parseSmtpReply } from '../bounce/smtp-reply.ts';
import { addressesToTry, triesNextAddress } from './mx-addresses.ts';

describe('addresses of an MX host a path tries', () => {
  const dual = ['192.0.2.1', '192.0.2.2', '2001:db8::1'];

  it('keeps the order, at most `max` of them, and only the source address’s family when bound', () => {
    expect(addressesToTry('mx.test', dual, undefined, 2)).toEqual({
      kind: 'addresses',
      addresses: ['192.0.2.1', '192.0.2.2'],
    });
    expect(addressesToTry('mx.test', dual, '', 5)).toEqual({ kind: 'addresses', addresses: dual });
    expect(addressesToTry('mx.test', dual, '198.51.100.7', 5)).toEqual({
      kind: 'addresses',
      addresses: ['192.0.2.1', '192.0.2.2'],
    });
    expect(addressesToTry('mx.test', dual, '2001:db8:1::7', 5)).toEqual({
      kind: 'addresses',
      addresses: ['2001:db8::1'],
    });
  });

  it('says so when the host has no address of the source address’s family', () => {
    expect(addressesToTry('mx.test', ['2001:db8::1'], '198.51.100.7', 2)).toMatchObject({
      kind: 'failure',
      reply: { local: 'no_address', enhanced: '4.4.4', text: expect.stringContaining('no IPv4 address') },
    });
  });
});

describe('failures that move a path to the MX host’s next address', () => {
  it.each([
    [localFailure('connection_refused', 'connect ECONNREFUSED 192.0.2.1:25'), true],
    [localFailure('timeout', 'connection timeout: no session within 30000 ms'), true],
    [localFailure('connection_lost', 'connection closed before the greeting'), true],
    [parseSmtpReply('421 4.3.2 Service not available, closing transmission channel'), true],
    [parseSmtpReply('554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using zen.spamhaus.org'), false],
    [localFailure('no_address', 'mx.test has no A or AAAA record'), false],
  ])('%j → %s', (reply, expected) => {
    expect(triesNextAddress(reply)).toBe(expected);
  });
});
