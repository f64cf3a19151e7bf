import { describe, expect, it } from 'vitest';
import { defaultVerdict } from '../bounce/default-verdict.ts';
import { localFailure, parseSmtpReply } from '../bounce/smtp-reply.ts';
import type { Verdict } from '../bounce/types.ts';
import {
  expiredBeforeAttempt,
  failureOutcome,
  heldOutcome,
  releasedOutcome,
  sentOutcome,
  type Attempt,
} from './attempt-policy.ts';

const at = Date.UTC(2026, 2, 1, 9, 0);
const policy = { retryDelaysSeconds: [60, 300, 900] };
const log = { id: 7, deliveryId: 3, email: 'pat@example.test', attempts: 0 };
const attempt = (attempts: number, validUntil: number | null): Attempt => ({
  log: { ...log, attempts },
  validUntil,
  at,
});
const ignored: Verdict = {
  type: 'ignored',
  reason: 'ignored',
  category: 'vacation',
  ruleId: 'away',
  packVersion: 'p1',
};

describe('attempt-outcome policy', () => {
  it.each([
    // reply, verdict, attempts before, validity → kind, retryAt, logged as expired
    [
      '550 5.1.1 <pat@example.test>: Recipient address rejected: User unknown',
      undefined,
      0,
      null,
      'failed',
      undefined,
      false,
    ],
    ['550 5.1.1 User unknown', undefined, 3, at + 1_000, 'failed', undefined, false],
    ['452 4.2.2 Mailbox full', undefined, 0, null, 'deferred', at + 60_000, undefined],
    ['452 4.2.2 Mailbox full', undefined, 1, null, 'deferred', at + 300_000, undefined],
    ['452 4.2.2 Mailbox full', undefined, 9, null, 'deferred', at + 900_000, undefined],
    ['452 4.2.2 Mailbox full', undefined, 1, at + 300_000, 'deferred', at + 300_000, undefined],
    ['452 4.2.2 Mailbox full', undefined, 1, at + 299_999, 'failed', undefined, true],
    ['421 4.7.0 Too many messages, slow down', undefined, 0, at + 59_999, 'failed', undefined, true],
    ['550 5.7.0 Recipient is away', ignored, 0, null, 'deferred', at + 60_000, undefined],
    ['550 5.7.0 Recipient is away', ignored, 2, at, 'failed', undefined, true],
  ] as const)(
    '%s (verdict %o, %i attempts, valid until %s) → %s',
    (raw, given, attempts, validUntil, kind, retryAt, expired) => {
      const reply = parseSmtpReply(raw);
      const verdict = given ?? defaultVerdict(reply);
      const outcome = failureOutcome(policy, attempt(attempts, validUntil), 'mx.example.test', reply, verdict);
      expect(outcome).toMatchObject({
        kind,
        logId: 7,
        deliveryId: 3,
        email: 'pat@example.test',
        mxHost: 'mx.example.test',
        at,
        reply,
        verdict,
      });
      expect(outcome.kind === 'deferred' ? outcome.retryAt : undefined).toBe(retryAt);
      expect(outcome.kind === 'failed' ? outcome.expired : undefined).toBe(expired);
    },
  );

  it.each([
    // reply, attempts before, validity → retryAt
    ['450 4.7.1 Greylisted, please try again in 300 seconds', 0, null, at + 300_000],
    ['451 4.7.1 Greylisted, retry in 10 minutes', 0, null, at + 600_000],
    // No delay named: mta.greylistRetrySeconds.
    ['451 4.7.1 Greylisted, try again later', 1, null, at + 240_000],
    // A few seconds would be a tight loop, a day is not greylisting: bounded to 60 s – 1 h.
    ['450 4.2.0 Greylisted for 5 s', 0, null, at + 60_000],
    ['450 4.2.0 Greylisted for 86400 seconds', 0, null, at + 3_600_000],
    // After three greylisted attempts, the normal schedule.
    ['451 4.7.1 Greylisted, try again later', 3, null, at + 86_400_000],
    ['451 4.7.1 Greylisted, try again later', 0, at + 200_000, undefined],
  ] as const)(
    'greylisted: %s (%i attempts before, valid until %s) → retried at %s',
    (raw, attempts, validUntil, retryAt) => {
      const greylisted: Verdict = {
        type: 'soft',
        reason: 'not_defined',
        category: 'onhold',
        ruleId: 'greylisted',
        packVersion: 'p1',
      };
      const greylistPolicy = { retryDelaysSeconds: [3600, 3600, 3600, 86400], greylistRetrySeconds: 240 };
      const outcome = failureOutcome(
        greylistPolicy,
        attempt(attempts, validUntil),
        'mx.example.test',
        parseSmtpReply(raw),
        greylisted,
      );
      expect(outcome.kind === 'deferred' ? outcome.retryAt : outcome.kind).toBe(retryAt ?? 'failed');
    },
  );

  it('a greylisted retry never waits longer than the schedule would', () => {
    const greylisted: Verdict = {
      type: 'soft',
      reason: 'not_defined',
      category: 'onhold',
      ruleId: 'greylisted',
      packVersion: 'p1',
    };
    const reply = parseSmtpReply('451 4.7.1 Greylisted, try again in 300 seconds');
    const outcome = failureOutcome(
      { retryDelaysSeconds: [1, 2], greylistRetrySeconds: 300 },
      attempt(0, null),
      null,
      reply,
      greylisted,
    );
    expect(outcome).toMatchObject({ kind: 'deferred', retryAt: at + 1_000 });
  });

  it('a local failure with no retry schedule expires at once', () => {
    const reply = localFailure('connection_refused', 'connect ECONNREFUSED');
    expect(
      failureOutcome({ retryDelaysSeconds: [] }, attempt(0, null), null, reply, defaultVerdict(reply)),
    ).toMatchObject({
      kind: 'failed',
      expired: true,
    });
  });

  it('an accepted message is sent', () => {
    const reply = parseSmtpReply('250 2.0.0 OK queued');
    expect(sentOutcome(attempt(0, null), 'mx.example.test', reply)).toEqual({
      kind: 'sent',
      logId: 7,
      deliveryId: 3,
      email: 'pat@example.test',
      mxHost: 'mx.example.test',
      at,
      reply,
    });
  });

  it.each([
    [null, at + 3_600_000, at + 3_600_000],
    [at + 10_000, at + 3_600_000, at + 10_001],
    [at + 10_000, at + 5_000, at + 5_000],
  ])('held with validity %s until %s → due again at %s', (validUntil, retryAt, due) => {
    expect(heldOutcome(attempt(0, validUntil), retryAt)).toMatchObject({ kind: 'released', retryAt: due });
  });

  it('released without a time is due at once and uses no attempt', () => {
    const released = releasedOutcome(attempt(4, null));
    expect(released).toEqual({
      kind: 'released',
      logId: 7,
      deliveryId: 3,
      email: 'pat@example.test',
      mxHost: null,
      at,
    });
  });

  it.each([
    [null, false],
    [at, false],
    [at - 1, true],
  ])('claimed with validity %s: expired before any attempt = %s', (validUntil, expired) => {
    const outcome = expiredBeforeAttempt(attempt(2, validUntil));
    if (!expired) expect(outcome).toBeUndefined();
    else
      expect(outcome).toMatchObject({
        kind: 'failed',
        expired: true,
        reply: { code: null, local: 'expired' },
        verdict: { type: 'soft', reason: 'expired', category: 'expired' },
      });
  });
});
