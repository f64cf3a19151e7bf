import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, parse, parseDocument, YAMLSeq, type Node } from 'yaml';
import { compileBounceRules } from '../bounce/classifier.ts';
import {
  formatPackIssues,
  layerBouncePacks,
  SHIPPED_BOUNCE_PACK,
  validateBouncePackText,
  type BouncePackLayer,
} from '../bounce/rule-pack.ts';
import { readIfExists, type TargetResult } from './targets.ts';

// Bounce packs of an update are the site layer over the shipped pack: written to bounce.siteRulesFile,
// which running roles already watch. That file also receives the rules `herald bounce qualify` adds,
// so applying a version keeps them: a rule of the current file whose id is not in the version being
// replaced was added by an operator, and stays first (site rules are evaluated before inherited ones).

/** Validates `text` alone (file:line of `name`), layered over the shipped pack, then merged with the operator's rules. */
export async function prepareBounceTarget(
  siteRulesFile: string,
  text: string,
  name: string,
  header: string,
  replacedText: string | undefined,
): Promise<TargetResult> {
  const shipped = await validateBouncePackText(readFileSync(SHIPPED_BOUNCE_PACK, 'utf8'), SHIPPED_BOUNCE_PACK);
  const alone = await validateBouncePackText(text, name);
  if (!alone.layer || !shipped.layer)
    return { ok: false, issues: formatPackIssues([...shipped.issues, ...alone.issues]).split('\n') };
  const layered = checkLayers(shipped.layer, alone.layer);
  if (layered.length > 0) return { ok: false, issues: layered };

  let current: string | undefined;
  try {
    current = readIfExists(siteRulesFile);
  } catch (error) {
    return { ok: false, issues: [`${siteRulesFile}: cannot read (${(error as Error).message})`] };
  }
  const merged = mergeOperatorRules(text, current, replacedText);
  if ('issue' in merged) return { ok: false, issues: [merged.issue] };
  const content = header + merged.text;
  const final = await validateBouncePackText(content, siteRulesFile);
  if (!final.layer)
    return {
      ok: false,
      issues: formatPackIssues(final.issues)
        .split('\n')
        .map((line) => `${line} (with the rules added by operators kept)`),
    };
  const finalIssues = checkLayers(shipped.layer, final.layer);
  if (finalIssues.length > 0) return { ok: false, issues: finalIssues };
  return { ok: true, target: { file: siteRulesFile, content } };
}

function checkLayers(shipped: BouncePackLayer, site: BouncePackLayer): string[] {
  const layered = layerBouncePacks([shipped, site]);
  if (!layered.pack) return formatPackIssues(layered.issues).split('\n');
  try {
    compileBounceRules(layered.pack);
    return [];
  } catch (error) {
    return [`${site.file}:1: does not compile: ${(error as Error).message}`];
  }
}

/** The version's text with the operator's rules (those of `current` unknown to `replacedText`) first in its rules list. */
export function mergeOperatorRules(
  text: string,
  current: string | undefined,
  replacedText: string | undefined,
): { text: string } | { issue: string } {
  if (current === undefined) return { text };
  const currentDoc = parseDocument(current);
  if (currentDoc.errors.length > 0 || !isMap(currentDoc.contents))
    return {
      issue: `the current site bounce rules are not a valid pack (${currentDoc.errors[0]?.message.split('\n')[0] ?? 'not a mapping'}): fix or remove that file first`,
    };
  const managed = new Set(ruleIds(replacedText));
  const currentRules = currentDoc.get('rules', true);
  if (isSeq(currentRules)) commentOnFirstItem(currentRules);
  const operatorNodes = isSeq(currentRules)
    ? (currentRules.items as Node[]).filter((node) => !managed.has(idOf(node) ?? ''))
    : [];
  if (operatorNodes.length === 0) return { text };
  const operatorIds = new Set(operatorNodes.map(idOf));
  const doc = parseDocument(text);
  let rules = doc.get('rules', true);
  if (!isSeq(rules)) {
    rules = new YAMLSeq();
    doc.set('rules', rules);
  }
  const seq = rules as YAMLSeq;
  commentOnFirstItem(seq);
  // An operator rule with the id of a rule of the version replaces it: the operator decided later.
  seq.items = [...operatorNodes, ...(seq.items as Node[]).filter((node) => !operatorIds.has(idOf(node)))];
  return { text: doc.toString({ lineWidth: 0 }) };
}

export function ruleIds(text: string | undefined): string[] {
  if (text === undefined) return [];
  try {
    const data = parse(text) as { rules?: Array<{ id?: unknown }> } | null;
    return Array.isArray(data?.rules) ? data.rules.map((r) => String(r?.id ?? '')) : [];
  } catch {
    return [];
  }
}

// The yaml library keeps the comment above a list's first item on the list itself: move it to the
// item, so the real reply quoted above each rule travels with its rule when rules are reordered.
function commentOnFirstItem(seq: YAMLSeq): void {
  const first = seq.items[0] as Node | undefined;
  if (!seq.commentBefore || !first) return;
  first.commentBefore = first.commentBefore ? `${seq.commentBefore}\n${first.commentBefore}` : seq.commentBefore;
  seq.commentBefore = undefined;
}

function idOf(node: Node): string | undefined {
  if (!isMap(node)) return undefined;
  const id = node.get('id', true);
  return isScalar(id) ? String(id.value) : undefined;
}
