import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildBounceClassifier, createClassifierSource } from '../src/bounce/qualification-classifier.ts';
import { createQualificationRecorder } from '../src/bounce/qualification-recorder.ts';
import { manualClock } from '../src/common/clock.ts';
import type { Outcome } from '../src/mta/outcome.ts';
import { parseSmtpReply } from '../src/bounce/smtp-reply.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { createReplyClassifier } from '../src/bounce/reply-classifier.ts';
import { createMtaQualification } from '../src/quarantine/mta-hooks.ts';
import { DEFAULT_QUARANTINE_SETTINGS } from '../src/quarantine/types.ts';
import { getQualificationEntry } from '../src/bounce/qualification-store.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';

// A real-looking refusal no shipped rule knows (a filtering appliance's own wording), seen twice
// with different queue ids, addresses and policy numbers.
const replies = [
  '550 Message 7F3AB2C1D9 turned away by gatekeeper rule 4711 for <pat@corp.test>, see https://gk.corp.test/why?id=1',
  '550 Message 99ZZ11QQ8A turned away by gatekeeper rule 12 for <lee@corp.test>, see https://gk.corp.test/why?id=2',
];

describeEachDialect('bounce qualification workflow (pending → qualify → new rule in use)', (context) => {
  it('counts unmatched replies by shape, writes a site rule from one, and a fresh classifier uses it', async () => {
    const store = context.store();
    const siteRulesFile = join(mkdtempSync(join(tmpdir(), 'herald-site-')), 'rules', 'site', 'bounce.yaml');
    const config = { bounce: { siteRulesFile } };
    const clock = manualClock(Date.UTC(2026, 2, 1, 9, 0));
    const classifiers = await createClassifierSource({ siteRulesFile, checkMs: 0 });
    const recorder = createQualificationRecorder({ store, now: clock.now, flushMs: 60_000 });
    const classify = createReplyClassifier(() => classifiers.current());
    const hooks = createMtaQualification({
      recorder,
      settings: DEFAULT_QUARANTINE_SETTINGS,
      clock,
    });
    const { deliveryId, logIds } = await seedDelivery(store.db, {
      now: clock.now(),
      recipients: [{ email: 'pat@corp.test' }, { email: 'lee@corp.test' }],
    });

    const outcomes: Outcome[] = replies.map((raw, i) => {
      const reply = parseSmtpReply(raw);
      const verdict = classify(reply);
      expect(verdict).toMatchObject({ category: 'undefined', ruleId: null });
      return {
        kind: 'failed',
        logId: logIds[i]!,
        deliveryId,
        email: i === 0 ? 'pat@corp.test' : 'lee@corp.test',
        mxHost: 'mx.corp.test',
        at: clock.now() + i,
        reply,
        verdict,
        expired: false,
      };
    });
    hooks.onOutcomes(outcomes);
    await hooks.flush();
    await recorder.flush();

    const pending = await runHerald(context.url(), ['bounce', 'pending', '--json'], config);
    expect(pending.exitCode).toBe(0);
    const entries = pending.json<{
      id: number;
      count: number;
      status: string;
      replyCode: number;
      pattern: string;
      example: string;
    }>();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      count: 2,
      status: 'to_qualify',
      replyCode: 550,
      pattern: 'message <id> turned away by gatekeeper rule <n> for <address>, see <url>',
    });
    expect(entries[0]!.example).toContain('7F3AB2C1D9');

    const bad = await runHerald(
      context.url(),
      ['bounce', 'qualify', String(entries[0]!.id), '--category', 'nonsense', '--json'],
      config,
    );
    expect(bad.exitCode).toBe(1);
    expect(bad.json()[0]).toMatchObject({ error: { code: 'INPUT_INVALID' } });

    const qualified = await runHerald(
      context.url(),
      ['bounce', 'qualify', String(entries[0]!.id), '--category', 'policyviolation', '--json'],
      config,
    );
    expect(qualified.exitCode).toBe(0);
    expect(qualified.json()[0]).toMatchObject({
      id: entries[0]!.id,
      ruleId: `site-policyviolation-${entries[0]!.id}`,
      category: 'policyviolation',
      siteVersion: 'site-1',
      status: 'keep',
    });
    // The real reply is quoted above the rule, like every rule of the shipped pack.
    expect(readFileSync(siteRulesFile, 'utf8')).toMatch(
      /# 550 Message 7F3AB2C1D9 turned away[^\n]*\n\s*- id: site-policyviolation-/,
    );
    // With its test sample: the real reply, which `bounce rules check` verifies the rule decides.
    expect(readFileSync(siteRulesFile, 'utf8')).toContain(`example: 550 ${replies[0]!.slice(4)}`);
    expect((await runHerald(context.url(), ['bounce', 'rules', 'check', siteRulesFile])).exitCode).toBe(0);

    // From now on: a fresh classifier (next start) and the running one (reload) both use the rule.
    const third = parseSmtpReply(
      '550 Message AB12CD34EF56 turned away by gatekeeper rule 9 for <kim@corp.test>, see https://gk.corp.test/why?id=3',
    );
    const fresh = (await buildBounceClassifier(siteRulesFile)).classifyReply({
      code: 550,
      enhanced: null,
      text: third.text,
    });
    expect(fresh).toMatchObject({
      category: 'policyviolation',
      reason: 'refused',
      ruleId: `site-policyviolation-${entries[0]!.id}`,
    });
    expect(fresh.packVersion).toMatch(/\+site-1$/);
    expect(await classifiers.reloadIfChanged()).toBe(true);
    expect(classify(third)).toMatchObject({
      category: 'policyviolation',
      ruleId: `site-policyviolation-${entries[0]!.id}`,
    });

    expect((await runHerald(context.url(), ['bounce', 'pending', '--json'], config)).json()).toHaveLength(0);
    expect(
      (await runHerald(context.url(), ['bounce', 'pending', '--status', 'keep', '--json'], config)).json()[0],
    ).toMatchObject({ status: 'keep', ruleId: `site-policyviolation-${entries[0]!.id}` });

    // A second rule for the same replies would never decide its own sample (the first one matches
    // them first): refused, naming the rule in the way, and the file is left as it was.
    const before = readFileSync(siteRulesFile, 'utf8');
    const other = await runHerald(
      context.url(),
      ['bounce', 'qualify', String(entries[0]!.id), '--category', 'blocked', '--id', 'gatekeeper-block', '--json'],
      config,
    );
    expect(other.exitCode).toBe(1);
    expect(other.json()[0]).toMatchObject({ error: { code: 'RULES_INVALID' } });
    expect(JSON.stringify(other.json()[0])).toContain(
      `rule gatekeeper-block: its example is decided by rule site-policyviolation-${entries[0]!.id}`,
    );
    expect(readFileSync(siteRulesFile, 'utf8')).toBe(before);
    expect(
      (await runHerald(context.url(), ['bounce', 'qualify', '999999', '--category', 'blocked'], config)).exitCode,
    ).toBe(1);
    expect(await getQualificationEntry(store, entries[0]!.id)).toMatchObject({
      status: 'keep',
      rule_id: `site-policyviolation-${entries[0]!.id}`,
      category: 'policyviolation',
    });

    await recorder.close();
    classifiers.close();
  });
});
