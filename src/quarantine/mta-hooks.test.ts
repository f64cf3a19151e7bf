import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createClassifierSource } from '../bounce/qualification-classifier.ts';
import type { QualificationRecorder } from '../bounce/qualification-recorder.ts';
import { manualClock } from '../common/clock.ts';
import { localFailure, parseSmtpReply } from '../mta/smtp-reply.ts';
import type { Store } from '../store/database.ts';
import { createMtaQualification, isQualifiedVerdict } from './mta-hooks.ts';
import { DEFAULT_QUARANTINE_SETTINGS } from './types.ts';

// classify() needs no database: only the rule pack.
function hooksWith(siteYaml: string) {
  const siteRulesFile = join(mkdtempSync(join(tmpdir(), 'herald-hooks-')), 'bounce.yaml');
  writeFileSync(siteRulesFile, siteYaml);
  const classifiers = createClassifierSource({ siteRulesFile, checkMs: 0 });
  const recorder: QualificationRecorder = { add: () => {}, flush: async () => {}, close: async () => {} };
  return createMtaQualification({ store: {} as Store, classifiers, recorder, settings: DEFAULT_QUARANTINE_SETTINGS, clock: manualClock() });
}

describe('MTA classify from the rule pack', () => {
  const hooks = hooksWith(`version: t1
rules:
  # 550 5.7.0 Recipient is away, message held for later
  - id: away-held
    category: vacation
    type: ignored
    text: 'recipient is away'
`);

  it('qualifies real replies with the pack and carries rule id and pack version', () => {
    const verdict = hooks.classify(parseSmtpReply('550 5.1.1 <pat@example.test>: Recipient address rejected: User unknown in virtual mailbox table'));
    expect(verdict).toMatchObject({ type: 'hard', reason: 'user_unknown', category: 'userunknown', qualifiedType: 'hard', packVersion: '2025.06-1+t1' });
    expect(isQualifiedVerdict(verdict) && verdict.ruleId).toEqual(expect.any(String));
  });

  it('an ignored verdict reaches the MTA as ignored (which retries it), its type kept for the timeline', () => {
    expect(hooks.classify(parseSmtpReply('550 5.7.0 Recipient is away, message held for later'))).toMatchObject({ type: 'ignored', qualifiedType: 'ignored', category: 'vacation', ruleId: 'away-held' });
  });

  it('failures without a reply (DNS, TCP) use the built-in verdicts', () => {
    expect(hooks.classify(localFailure('connection_refused', 'connect ECONNREFUSED 192.0.2.1:25'))).toMatchObject({ type: 'soft', reason: 'unreachable', ruleId: 'local.connection_refused', packVersion: null });
    expect(hooks.classify(localFailure('domain_not_found', 'NXDOMAIN'))).toMatchObject({ type: 'hard', reason: 'invalid_domain' });
  });

  it('a 4yz reply is never hard (RFC 5321 §4.2.1)', () => {
    expect(hooks.classify(parseSmtpReply('450 4.1.1 <pat@example.test>: Recipient address rejected: User unknown'))).toMatchObject({ type: 'soft' });
  });
});
