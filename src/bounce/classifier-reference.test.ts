import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bounceCorpusDir } from '../../test/support/corpus.ts';
import { classifyBounce } from './classify-bounce.ts';
import { compileBounceRules, normalizeReply, type BounceClassifier, type ReportContext } from './classifier.ts';
import { parseBounceMessages } from './parse-bounce.ts';
import { loadBouncePack, type BouncePack, type BounceRule } from './rule-pack.ts';
import { parseSmtpReply, type SmtpReply } from './smtp-reply.ts';
import { DSN_ACTIONS, type DsnAction } from './types.ts';

// The classifier is optimised (shared patterns, patterns joined per block, a verdict cache); this
// is the rule pack read the plain way: every rule in order, each of its text patterns a RegExp of
// its own. Both must decide every reply alike, so an optimisation can never change a decision.

function plainMatch(pattern: string, value: string): boolean {
  return pattern.length === value.length && [...pattern].every((p, i) => p === 'x' || p === value[i]);
}

function referenceRule(pack: BouncePack, reply: SmtpReply, report: ReportContext | undefined): BounceRule | null {
  const normalized = normalizeReply(reply);
  const code = normalized.code === undefined ? undefined : String(normalized.code);
  const status = normalized.enhancedStatus;
  for (const rule of pack.rules) {
    if (rule.phase && !(normalized.phase && rule.phase.includes(normalized.phase))) continue;
    if (rule.code && !(code ? rule.code.some((p) => plainMatch(p, code)) : rule.code.includes('none'))) continue;
    if (rule.status && !(status && rule.status.some((p) => plainMatch(p, status)))) continue;
    const host = normalized.mxHost;
    if (rule.mxHost && !(host && rule.mxHost.some((glob) => globMatches(glob, host)))) continue;
    if (rule.action && !(report?.action && rule.action.includes(report.action))) continue;
    if (rule.text && !rule.text.some((text) => new RegExp(text, 'i').test(normalized.text))) continue;
    return rule;
  }
  return null;
}

// Globs are validated to [a-z0-9*.-]: `*` is any run of characters, the rest literal.
function globMatches(glob: string, host: string): boolean {
  const parts = glob.toLowerCase().split('*');
  return new RegExp(`^${parts.map((part) => part.replaceAll('.', '\\.')).join('.*')}$`).test(host);
}

interface Case {
  reply: SmtpReply;
  report?: ReportContext;
}

// The replies classifyBounce hands over for every corpus recipient, recorded through a classifier
// that passes each call on.
async function corpusCases(pack: BouncePack): Promise<Case[]> {
  const inner = compileBounceRules(pack, { cacheSize: 0 });
  const cases: Case[] = [];
  const recording: BounceClassifier = {
    version: inner.version,
    verdictFor: inner.verdictFor,
    classifyReply(reply, report) {
      cases.push({ reply, ...(report && { report }) });
      return inner.classifyReply(reply, report);
    },
  };
  for (const file of readdirSync(bounceCorpusDir).filter((f) => f.endsWith('.eml')))
    for (const parsed of await parseBounceMessages(readFileSync(resolve(bounceCorpusDir, file))))
      classifyBounce(parsed, recording);
  return cases;
}

function exampleCases(pack: BouncePack): Case[] {
  return pack.rules.flatMap((rule) => {
    if (!rule.example) return [];
    const reply = parseSmtpReply(rule.example);
    if (rule.phase?.[0]) reply.phase = rule.phase[0];
    if (rule.mxHost?.[0]) reply.mxHost = rule.mxHost[0].replace(/\*/g, 'mx');
    return [{ reply, ...(rule.action?.[0] && { report: { action: rule.action[0] } }) }];
  });
}

// Each reply also without its code, without its phase, and under every report Action: the
// conditions beside the text decide which rules are even tried.
function variants(cases: Case[]): Case[] {
  const actions: (DsnAction | undefined)[] = [undefined, ...DSN_ACTIONS];
  return cases.flatMap(({ reply }) => {
    const { phase: _phase, ...withoutPhase } = reply;
    const replies = [reply, { ...reply, code: null }, withoutPhase];
    return replies.flatMap((r) => actions.map((action) => ({ reply: r, ...(action && { report: { action } }) })));
  });
}

describe('the optimised classifier decides as the plain reading of the rules', async () => {
  const pack = await loadBouncePack();
  const cases = variants([...exampleCases(pack), ...(await corpusCases(pack))]);

  it('covers the corpus replies (and the rule examples a pack has)', () => {
    expect(cases.length).toBeGreaterThan(2_000);
    // The set exercises most rules, not only the fallbacks.
    const deciding = new Set(cases.map((c) => referenceRule(pack, c.reply, c.report)?.id));
    expect(deciding.size).toBeGreaterThan(45);
  });

  it('gives the same rule and category for every reply, cached or not, first time or again', () => {
    const cached = compileBounceRules(pack);
    const uncached = compileBounceRules(pack, { cacheSize: 0 });
    const differences: string[] = [];
    for (const pass of [1, 2]) {
      for (const { reply, report } of cases) {
        const rule = referenceRule(pack, reply, report);
        const expected = { ruleId: rule?.id ?? null, category: rule?.category ?? 'undefined' };
        for (const [name, classifier] of [
          ['cached', cached],
          ['uncached', uncached],
        ] as const) {
          const verdict = classifier.classifyReply(reply, report);
          if (verdict.ruleId !== expected.ruleId || verdict.category !== expected.category)
            differences.push(
              `${name} pass ${pass}: ${JSON.stringify({ reply, report })} → ${verdict.ruleId}, expected ${expected.ruleId}`,
            );
        }
      }
    }
    expect(differences).toEqual([]);
  });

  it('hands out a copy of a cached verdict', () => {
    const classifier = compileBounceRules(pack);
    const reply: SmtpReply = { code: 550, enhanced: '5.1.1', text: 'user unknown' };
    const first = classifier.classifyReply(reply);
    first.category = 'blocked';
    expect(classifier.classifyReply(reply).category).toBe('userunknown');
  });

  it('decides alike with a cache too small for the replies (entries dropped and decided again)', () => {
    const classifier = compileBounceRules(pack, { cacheSize: 2 });
    const replies = cases.slice(0, 50);
    for (const pass of [1, 2])
      for (const { reply, report } of replies)
        expect([pass, classifier.classifyReply(reply, report).ruleId]).toEqual([
          pass,
          referenceRule(pack, reply, report)?.id ?? null,
        ]);
  });
});
