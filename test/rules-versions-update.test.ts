import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { buildBounceClassifier, createClassifierSource } from '../src/bounce/qualification-classifier.ts';
import { manualClock } from '../src/common/clock.ts';
import { AppError } from '../src/common/errors.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { HeraldConfig } from '../src/config/schema.ts';
import { rollbackRulePack, updateRulePacks } from '../src/rules-versions/update.ts';
import { RulesHolder } from '../src/shaping/compiled-rules.ts';
import { loadRuleFiles, ruleFilesFor } from '../src/shaping/rule-loader.ts';
import { watchRules } from '../src/shaping/rules-reload.ts';
import type { Store } from '../src/store/database.ts';
import { listVersions } from '../src/rules-versions/rule-version-store.ts';
import { listSteps } from '../src/workflows/workflow-store.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { describeEachDialect } from './support/databases.ts';

const now = Date.parse('2026-07-01T03:30:00Z');

const mxV1 = `rules:
  - name: google
    mask: ["*.google.com", "*.googlemail.com"]
    maxConnections: 4
    maxMessagesPerHour: 9000
  - name: example-isp
    mask: "*.mx.example-isp.test"
    maxConnections: 2
    maxMessagesPerHour: 500
`;

const mxV2 = `rules:
  - name: google
    mask: ["*.google.com", "*.googlemail.com"]
    maxConnections: 6
    maxMessagesPerHour: 9000
  - name: other-isp
    mask: "*.mx.other-isp.test"
    maxConnections: 1
    maxMessagesPerHour: 100
backoff:
  - name: other-isp-421
    reply: "^421 .*slow down"
    factor: 0.5
    duration: 30m
`;

const bounceV1 = `version: 'upd-1'
rules:
  # 550 5.7.1 Message rejected by example-isp policy (ref 1234)
  - id: example-isp-policy
    category: policyviolation
    text: 'rejected by example-isp policy'
`;

const bounceV2 = `version: 'upd-2'
rules:
  # 550 5.7.1 Message rejected by example-isp policy (ref 1234)
  - id: example-isp-policy
    category: spamdetected
    text: 'rejected by example-isp policy'
`;

const policyReply = {
  code: 550,
  enhanced: '5.7.1',
  text: 'Message rejected by example-isp policy (ref 1234)',
  phase: 'rcpt' as const,
  mxHost: 'mx1.mx.example-isp.test',
};

interface Setup {
  config: HeraldConfig;
  source: string;
  siteDir: string;
  bounceFile: string;
  write(files: Record<string, string>): void;
}

async function setup(store: Store): Promise<Setup> {
  await store.db.deleteFrom('rule_versions').execute();
  const root = mkdtempSync(join(tmpdir(), 'herald-rules-versions-'));
  const source = join(root, 'source');
  const siteDir = join(root, 'site', 'mx');
  const bounceFile = join(root, 'site', 'bounce.yaml');
  mkdirSync(source, { recursive: true });
  const config = parseConfig(
    { shaping: { siteRulesDir: siteDir }, bounce: { siteRulesFile: bounceFile }, deliverability: { source } },
    'test',
  );
  return {
    config,
    source,
    siteDir,
    bounceFile,
    write(files) {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(source, name), text);
    },
  };
}

const mxRules = async (s: Setup) => {
  const loaded = await loadRuleFiles(ruleFilesFor({ siteRulesDir: s.siteDir }));
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
  return loaded.rules;
};

describeEachDialect('deliverability update', (context) => {
  it('updates from a directory: both packs stored as active versions and seen by a fresh MX rule load and classifier', async () => {
    const store = context.store();
    const s = await setup(store);
    expect((await buildBounceClassifier(s.bounceFile)).classifyReply(policyReply).ruleId).not.toBe(
      'example-isp-policy',
    );
    // What running roles hold: their reload mechanisms must pick the new version up.
    const classifiers = await createClassifierSource({ siteRulesFile: s.bounceFile, checkMs: 0 });
    const holder = new RulesHolder(await mxRules(s));
    const watcher = watchRules({ holder, sources: { siteRulesDir: s.siteDir }, intervalMs: 3_600_000 });
    s.write({ 'mx.yaml': mxV1, 'bounce.yaml': bounceV1 });

    const result = await updateRulePacks({ store, config: s.config, now });
    expect(result.kinds.map((k) => [k.kind, k.outcome, k.previousVersion])).toEqual([
      ['bounce', 'updated', null],
      ['mx', 'updated', null],
    ]);
    expect(result.kinds.find((k) => k.kind === 'mx')!.diff).toEqual({
      added: ['google', 'example-isp'],
      removed: [],
      changed: [],
    });

    const rules = await mxRules(s);
    expect(rules.match('mx1.mx.example-isp.test', 0)).toMatchObject({ name: 'example-isp', maxConnections: 2 });
    expect(rules.match('gmail-smtp-in.l.google.com', 0)).toMatchObject({ name: 'google', maxConnections: 4 });
    expect((await buildBounceClassifier(s.bounceFile)).classifyReply(policyReply)).toMatchObject({
      ruleId: 'example-isp-policy',
      category: 'policyviolation',
    });

    const versions = await listVersions(store);
    expect(versions.map((v) => [v.kind, v.active, v.created_at, v.activated_at])).toEqual([
      ['bounce', 1, now, now],
      ['mx', 1, now, now],
    ]);

    expect(await classifiers.reloadIfChanged()).toBe(true);
    expect(classifiers.current().classifyReply(policyReply).ruleId).toBe('example-isp-policy');
    expect(await watcher.check()).toMatchObject({ kind: 'reloaded' });
    expect(holder.current().match('mx1.mx.example-isp.test', 0).name).toBe('example-isp');
    watcher.stop();
    classifiers.close();
  });

  it('stores no new version for unchanged content, and writes an edited MX file again', async () => {
    const store = context.store();
    const s = await setup(store);
    s.write({ 'mx.yaml': mxV1 });
    await updateRulePacks({ store, config: s.config, now });
    const again = await updateRulePacks({ store, config: s.config, now: now + 86_400_000 });
    expect(again.kinds.map((k) => k.outcome)).toEqual(['unchanged']);
    expect(await listVersions(store, { kind: 'mx' })).toHaveLength(1);

    const file = join(s.siteDir, '00-deliverability-update.yaml');
    writeFileSync(file, 'rules: []\n');
    const repaired = await updateRulePacks({ store, config: s.config, now: now + 2 * 86_400_000 });
    expect(repaired.kinds.map((k) => k.outcome)).toEqual(['repaired']);
    expect((await mxRules(s)).match('mx1.mx.example-isp.test', 0).name).toBe('example-isp');
    expect(await listVersions(store, { kind: 'mx' })).toHaveLength(1);
  });

  // The MTA layers site files in code-unit order ("00-…" before "00_…"); the update was checked in
  // locale order ("00_…" first): it was accepted, and the MTA refused the layering it then loaded.
  it('checks an MX pack layered in the order the MTA loads the site files', async () => {
    const store = context.store();
    const s = await setup(store);
    mkdirSync(s.siteDir, { recursive: true });
    writeFileSync(
      join(s.siteDir, '00_local.yaml'),
      'rules:\n  - name: catchall\n    mask: "*"\n    maxConnections: 3\n    maxMessagesPerHour: 2000\n',
    );
    await mxRules(s);
    s.write({
      'mx.yaml':
        'rules:\n  - name: catchall\n    mask: "*.catchall.test"\n    maxConnections: 1\n    maxMessagesPerHour: 10\n  - name: generic\n    mask: "*"\n    maxConnections: 5\n    maxMessagesPerHour: 3000\n',
    });
    const error = await updateRulePacks({ store, config: s.config, now }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).message).toContain('rule "catchall" matches every MX host');
    expect(await listVersions(store, { kind: 'mx' })).toHaveLength(0);
    expect((await mxRules(s)).match('mx.anything.test', 0).name).toBe('catchall');
  });

  it('rejects an invalid pack with file:line errors and changes nothing, even when the other pack is valid', async () => {
    const store = context.store();
    const s = await setup(store);
    s.write({ 'mx.yaml': mxV1, 'bounce.yaml': bounceV1 });
    await updateRulePacks({ store, config: s.config, now });
    const mxFileBefore = readFileSync(join(s.siteDir, '00-deliverability-update.yaml'), 'utf8');
    const bounceBefore = readFileSync(s.bounceFile, 'utf8');

    s.write({
      'mx.yaml': mxV2.replace('maxConnections: 1', 'maxConnections: -1'),
      'bounce.yaml': bounceV2.replace('spamdetected', 'spamish'),
    });
    const error = await updateRulePacks({ store, config: s.config, now: now + 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('RULES_INVALID');
    expect((error as AppError).message).toContain(
      `${join(s.source, 'mx.yaml')}:8: rules[1].maxConnections: expected a positive integer`,
    );
    expect((error as AppError).message).toContain(
      `${join(s.source, 'bounce.yaml')}:5: rule example-isp-policy: unknown category "spamish"`,
    );

    expect(readFileSync(join(s.siteDir, '00-deliverability-update.yaml'), 'utf8')).toBe(mxFileBefore);
    expect(readFileSync(s.bounceFile, 'utf8')).toBe(bounceBefore);
    const versions = await listVersions(store);
    expect(versions).toHaveLength(2);
    expect(versions.every((v) => v.active === 1)).toBe(true);
  });

  it('refuses a bounce rule whose pattern backtracks catastrophically (ReDoS), naming file, line and rule', async () => {
    // Before: accepted, and one 550 reply of 40 "x" then held the MTA's event loop for hours
    // (3.9 s at 26 characters, doubling with each one).
    const store = context.store();
    const s = await setup(store);
    s.write({ 'bounce.yaml': bounceV1 });
    await updateRulePacks({ store, config: s.config, now });
    const bounceBefore = readFileSync(s.bounceFile, 'utf8');
    s.write({
      'bounce.yaml': `${bounceV2}  # 550 5.7.1 xxxxxxxxxxxxxxxxxxxxxxxx\n  - id: evil\n    category: blocked\n    text: '(x+x+)+y'\n`,
    });
    const error = await updateRulePacks({ store, config: s.config, now: now + 1 }).catch((e: unknown) => e);
    expect((error as AppError).code).toBe('RULES_INVALID');
    expect((error as AppError).message).toContain(
      `${join(s.source, 'bounce.yaml')}:8: rule evil: text "(x+x+)+y" backtracks catastrophically`,
    );
    expect(readFileSync(s.bounceFile, 'utf8')).toBe(bounceBefore);
  }, 60_000);

  it('refuses packs that fit the size limits alone but not once written with their header, keeping the files in force', async () => {
    // Before: accepted and written; the MTA's reload and the bounce classifier then refused the
    // files they watch (too large), so the update reported success and the next start failed.
    const store = context.store();
    const s = await setup(store);
    s.write({ 'mx.yaml': mxV1, 'bounce.yaml': bounceV1 });
    await updateRulePacks({ store, config: s.config, now });
    const mxFile = join(s.siteDir, '00-deliverability-update.yaml');
    const mxBefore = readFileSync(mxFile, 'utf8');
    const bounceBefore = readFileSync(s.bounceFile, 'utf8');
    const padded = (text: string, bytes: number) => `${text}#${'x'.repeat(bytes - text.length - 2)}\n`;
    s.write({ 'mx.yaml': padded(mxV2, 1024 * 1024), 'bounce.yaml': padded(bounceV2, 2 * 1024 * 1024) });
    const error = await updateRulePacks({ store, config: s.config, now: now + 1 }).catch((e: unknown) => e);
    expect((error as AppError).code).toBe('RULES_INVALID');
    expect((error as AppError).message).toContain(`${mxFile}:1: (file): a rule pack is at most 1048576 bytes`);
    expect((error as AppError).message).toContain(`${s.bounceFile}:1: a bounce rule pack is at most 2097152 bytes`);
    expect(readFileSync(mxFile, 'utf8')).toBe(mxBefore);
    expect(readFileSync(s.bounceFile, 'utf8')).toBe(bounceBefore);
    expect((await mxRules(s)).match('mx1.mx.example-isp.test', 0).name).toBe('example-isp');
  }, 60_000);

  it('records the diff against the version replaced (added, removed, changed rules) and rolls back to it', async () => {
    const store = context.store();
    const s = await setup(store);
    s.write({ 'mx.yaml': mxV1, 'bounce.yaml': bounceV1 });
    const first = await updateRulePacks({ store, config: s.config, now });
    s.write({ 'mx.yaml': mxV2, 'bounce.yaml': bounceV2 });
    const second = await updateRulePacks({ store, config: s.config, now: now + 60_000 });

    const mx = second.kinds.find((k) => k.kind === 'mx')!;
    expect(mx.diff).toEqual({
      added: ['other-isp', 'backoff:other-isp-421'],
      removed: ['example-isp'],
      changed: ['google'],
    });
    expect(mx.previousVersion).toBe(first.kinds.find((k) => k.kind === 'mx')!.version);
    expect(second.kinds.find((k) => k.kind === 'bounce')!.diff).toEqual({
      added: [],
      removed: [],
      changed: ['example-isp-policy'],
    });
    expect((await mxRules(s)).match('mx1.mx.example-isp.test', 0).name).toBe('generic');
    expect((await buildBounceClassifier(s.bounceFile)).classifyReply(policyReply).category).toBe('spamdetected');

    const rolledBack = await rollbackRulePack({ store, config: s.config, now: now + 120_000 }, 'mx');
    expect(rolledBack).toMatchObject({
      kind: 'mx',
      from: { version: mx.version },
      to: { version: first.kinds.find((k) => k.kind === 'mx')!.version },
    });
    expect(rolledBack.diff).toEqual({
      added: ['example-isp'],
      removed: ['other-isp', 'backoff:other-isp-421'],
      changed: ['google'],
    });
    const rules = await mxRules(s);
    expect(rules.match('mx1.mx.example-isp.test', 0)).toMatchObject({ name: 'example-isp', maxConnections: 2 });
    expect(rules.match('gmail-smtp-in.l.google.com', 0).maxConnections).toBe(4);

    await rollbackRulePack({ store, config: s.config, now: now + 120_000 }, 'bounce');
    expect((await buildBounceClassifier(s.bounceFile)).classifyReply(policyReply).category).toBe('policyviolation');

    const active = (await listVersions(store)).filter((v) => v.active === 1);
    expect(active.map((v) => v.id).sort()).toEqual(first.kinds.map((k) => k.versionId).sort());
    // The first versions replaced nothing: one more rollback is a clear error, and changes nothing.
    const error = await rollbackRulePack({ store, config: s.config, now: now + 180_000 }, 'mx').catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(/no previous version to roll back to/),
    });
    expect((await mxRules(s)).match('mx1.mx.example-isp.test', 0).name).toBe('example-isp');
  });

  it('keeps the rules operators added to the bounce site file (herald bounce qualify) when a version is applied', async () => {
    const store = context.store();
    const s = await setup(store);
    mkdirSync(join(s.bounceFile, '..'), { recursive: true });
    writeFileSync(
      s.bounceFile,
      `version: site-1
rules:
  # 550 5.1.1 mailbox nowhere-to-be-found at operator.test
  - id: site-nowhere
    category: userunknown
    text: 'nowhere-to-be-found'
`,
    );
    s.write({ 'bounce.yaml': bounceV1 });
    await updateRulePacks({ store, config: s.config, now });
    const classifier = await buildBounceClassifier(s.bounceFile);
    expect(classifier.classifyReply(policyReply).ruleId).toBe('example-isp-policy');
    expect(
      classifier.classifyReply({
        code: 550,
        enhanced: '5.1.1',
        text: 'mailbox nowhere-to-be-found',
        phase: 'rcpt',
        mxHost: 'mx.operator.test',
      }).ruleId,
    ).toBe('site-nowhere');

    s.write({ 'bounce.yaml': bounceV2 });
    await updateRulePacks({ store, config: s.config, now: now + 1 });
    const text = readFileSync(s.bounceFile, 'utf8');
    expect(text).toContain('id: site-nowhere');
    expect(text).toContain('# 550 5.1.1 mailbox nowhere-to-be-found at operator.test');
    expect(text.match(/id: example-isp-policy/g)).toHaveLength(1);
    expect((await buildBounceClassifier(s.bounceFile)).classifyReply(policyReply).category).toBe('spamdetected');
  });

  it('runs through the engine: runNow succeeds on a good source, and a failing source leaves the workflow failed with its error', async () => {
    const store = context.store();
    const s = await setup(store);
    s.write({ 'mx.yaml': mxV1 });
    const engineFor = (config: HeraldConfig, at: number) =>
      createWorkflowEngine({
        store,
        config,
        clock: manualClock(at),
        logger: silentLogger,
        nodeId: 'node-a',
        ticker: manualTicker,
      });

    const ok = await engineFor(s.config, now).runNow('deliverability-update');
    expect(ok.status).toBe('succeeded');
    const [step] = await listSteps(store, ok.runId);
    expect(step).toMatchObject({ status: 'succeeded', summary: expect.stringMatching(/^mx updated to [0-9a-f]{16}$/) });

    const missing = parseConfig(
      {
        shaping: { siteRulesDir: s.siteDir },
        bounce: { siteRulesFile: s.bounceFile },
        deliverability: { source: join(s.source, 'nope') },
      },
      'test',
    );
    const engine = engineFor(missing, now + 60_000);
    const failed = await engine.runNow('deliverability-update');
    expect(failed).toMatchObject({ status: 'failed', failedStepName: 'update-rule-packs' });
    expect(failed.error).toMatch(/RULES_SOURCE_UNAVAILABLE: rule source .*nope/);
    const status = (await engine.status()).find((w) => w.name === 'deliverability-update');
    expect(status).toMatchObject({ state: 'failed', health: 'failed' });
    expect((await mxRules(s)).match('mx1.mx.example-isp.test', 0).name).toBe('example-isp');
  });
});
