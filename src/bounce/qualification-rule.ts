import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { isMap, isSeq, parseDocument, YAMLSeq } from 'yaml';
import { AppError } from '../common/errors.ts';
import { patternToRegex } from './qualification-normalize.ts';
import { checkRuleExamples } from './rule-examples.ts';
import {
  formatPackIssues,
  layerBouncePacks,
  SHIPPED_BOUNCE_PACK,
  validateBouncePackText,
  type BouncePackLayer,
} from './rule-pack.ts';
import { isBounceCategory, isFailureReason, type BounceCategory } from './types.ts';

// `herald bounce qualify`: turns an entry of the qualification table into a rule of the site pack.
// The rule matches the entry's shape (reply code, enhanced status, text with the variable parts
// as wildcards) and quotes the real reply above it, like every rule of the shipped pack. The new
// file is validated layered over the shipped pack before it replaces the old one (atomically).

export interface QualifiableEntry {
  id: number;
  replyCode: number | null;
  enhancedStatus: string | null;
  pattern: string;
  example: string;
}

export interface SiteRuleRequest {
  category: string;
  /** Default: site-<category>-<entry id>. */
  ruleId?: string;
  reason?: string;
  type?: string;
}

export interface SiteRuleResult {
  ruleId: string;
  /** Version of the site file after the change (`site-N`). */
  siteVersion: string;
  /** Version of the layered pack (shipped + site). */
  packVersion: string;
  file: string;
}

export interface SiteRule {
  id: string;
  category: BounceCategory;
  reason?: string;
  type?: string;
  code?: string[];
  status?: string[];
  text: string[];
  /** The real reply, checked against the layered pack (the rule's test sample). */
  example?: string;
}

export function ruleForEntry(entry: QualifiableEntry, request: SiteRuleRequest): SiteRule {
  if (!isBounceCategory(request.category))
    throw new AppError('INPUT_INVALID', `unknown category "${request.category}" (see DESIGN.md's bounce categories)`);
  if (request.reason !== undefined && !isFailureReason(request.reason))
    throw new AppError('INPUT_INVALID', `unknown reason "${request.reason}"`);
  if (request.type !== undefined && !['hard', 'soft', 'ignored'].includes(request.type))
    throw new AppError('INPUT_INVALID', `type must be hard, soft or ignored, not "${request.type}"`);
  const id = request.ruleId ?? `site-${request.category}-${entry.id}`;
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(id))
    throw new AppError('INPUT_INVALID', `rule id "${id}": lowercase letters, digits, dot, dash and underscore`);
  const rule: SiteRule = { id, category: request.category, text: [patternToRegex(entry.pattern) || '.'] };
  if (request.reason) rule.reason = request.reason;
  if (request.type) rule.type = request.type;
  if (entry.replyCode !== null) rule.code = [String(entry.replyCode)];
  if (entry.enhancedStatus) rule.status = [entry.enhancedStatus];
  const example = [entry.replyCode, entry.enhancedStatus, entry.example.replace(/\s+/g, ' ').trim()]
    .filter(Boolean)
    .join(' ')
    .slice(0, 1_000);
  if (example) rule.example = example;
  return rule;
}

/** Appends the rule to the site file (created with its directories), validated against the shipped pack. */
export async function appendSiteRule(file: string, rule: SiteRule, example: string): Promise<SiteRuleResult> {
  const text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Site bounce rules, layered over the shipped pack (docs/quarantine.md). Written by `herald bounce qualify`; edit freely.\n';
  const doc = parseDocument(text);
  if (doc.errors.length > 0)
    throw new AppError(
      'RULES_INVALID',
      `${file}: not valid YAML (${doc.errors[0]!.message.split('\n')[0]}); fix it before adding rules`,
    );
  if (doc.contents === null || doc.contents === undefined) doc.contents = doc.createNode({}) as never;
  if (!isMap(doc.contents)) throw new AppError('RULES_INVALID', `${file}: a bounce rule pack is a mapping`);
  const previous = String(doc.get('version') ?? '');
  const n = /^site-(\d+)$/.exec(previous);
  const siteVersion = `site-${n ? Number(n[1]) + 1 : 1}`;
  doc.set('version', siteVersion);
  let rules = doc.get('rules', true);
  if (!isSeq(rules)) {
    rules = new YAMLSeq();
    doc.set('rules', rules);
  }
  const node = doc.createNode(rule);
  // The real reply, quoted above the rule (one line, bounded).
  node.commentBefore = ` ${example.replace(/\s+/g, ' ').trim().slice(0, 300)}`;
  (rules as YAMLSeq).items.push(node);
  const next = doc.toString({ lineWidth: 0 });

  const shipped = await validateBouncePackText(readFileSync(SHIPPED_BOUNCE_PACK, 'utf8'), SHIPPED_BOUNCE_PACK);
  const site = await validateBouncePackText(next, file);
  const issues = [...shipped.issues, ...site.issues];
  const layered =
    issues.length === 0
      ? layerBouncePacks([shipped.layer, site.layer].filter((l): l is BouncePackLayer => l !== undefined))
      : undefined;
  issues.push(...(layered?.issues ?? []));
  if (issues.length > 0 || !layered?.pack)
    throw new AppError('RULES_INVALID', `the new rule would make the site pack invalid:\n${formatPackIssues(issues)}`, {
      details: { issues },
    });
  const failing = checkRuleExamples(layered.pack).filter((i) => i.file === file);
  if (failing.length > 0)
    throw new AppError('RULES_INVALID', `the new rule does not decide its own sample:\n${formatPackIssues(failing)}`, {
      details: { issues: failing },
    });

  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, next);
  renameSync(temporary, file);
  return { ruleId: rule.id, siteVersion, packVersion: layered.pack.version, file };
}
