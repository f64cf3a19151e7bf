import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildBounceClassifier } from './qualification-classifier.ts';
import { createReplyClassifier } from './reply-classifier.ts';
import { localFailure, parseSmtpReply } from './smtp-reply.ts';

async function classifierWith(siteYaml: string) {
  const siteRulesFile = join(mkdtempSync(join(tmpdir(), 'herald-hooks-')), 'bounce.yaml');
  writeFileSync(siteRulesFile, siteYaml);
  const classifier = await buildBounceClassifier(siteRulesFile);
  return createReplyClassifier(() => classifier);
}

const classify = await classifierWith(`version: t1
rules:
  # 550 5.7.0 Recipient is away, message held for later
  - id: away-held
    category: vacation
    type: ignored
    text: 'recipient is away'
`);

describe('MTA replies qualified by the rule pack', () => {
  it('qualifies real replies with the pack and carries rule id and pack version', () => {
    const verdict = classify(
      parseSmtpReply('550 5.1.1 <pat@example.test>: Recipient address rejected: User unknown in virtual mailbox table'),
    );
    expect(verdict).toMatchObject({
      type: 'hard',
      reason: 'user_unknown',
      category: 'userunknown',
      packVersion: '2025.06-8+t1',
    });
    expect(verdict.ruleId).toEqual(expect.any(String));
  });

  it('an ignored verdict reaches the MTA as ignored (which retries it)', () => {
    expect(classify(parseSmtpReply('550 5.7.0 Recipient is away, message held for later'))).toMatchObject({
      type: 'ignored',
      category: 'vacation',
      ruleId: 'away-held',
    });
  });

  it('failures without a reply (DNS, TCP) use the built-in verdicts', () => {
    expect(classify(localFailure('connection_refused', 'connect ECONNREFUSED 192.0.2.1:25'))).toEqual({
      type: 'soft',
      reason: 'unreachable',
      category: 'networkerror',
      ruleId: 'local.connection_refused',
      packVersion: null,
    });
    expect(classify(localFailure('domain_not_found', 'NXDOMAIN'))).toMatchObject({
      type: 'hard',
      reason: 'invalid_domain',
    });
  });

  it('a 4yz reply is never hard (RFC 5321 §4.2.1)', () => {
    expect(
      classify(parseSmtpReply('450 4.1.1 <pat@example.test>: Recipient address rejected: User unknown')),
    ).toMatchObject({ type: 'soft' });
  });

  it('an unmatched reply has no rule id (it goes to the qualification table)', () => {
    expect(classify(parseSmtpReply('550 Message 7F3AB2C1D9 refused by gatekeeper 4711'))).toMatchObject({
      category: 'undefined',
      ruleId: null,
    });
  });
});
