import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ShapingConfig } from '../config/schema.ts';
import { bySiteFileName, listSiteFiles, loadRuleTexts, shippedPackPath } from '../shaping/rule-loader.ts';
import { formatIssue, maxPackBytes, parseRulePack } from '../shaping/rule-pack.ts';
import type { PackTarget, TargetResult } from './targets.ts';

// MX packs of an update are a site layer: written to <shaping.siteRulesDir>/00-deliverability-update.yaml,
// which the MTA's rule watcher already layers after shaping.rulesFiles (the shipped pack by default)
// and before the operator's own site files (name order: "00-" sorts first, so theirs still win).

export const mxTargetName = '00-deliverability-update.yaml';

export function mxTargetFile(shaping: ShapingConfig): string | undefined {
  return shaping.siteRulesDir ? join(shaping.siteRulesDir, mxTargetName) : undefined;
}

/** Validates `text` alone (file:line of `name`), then layered exactly as the MTA will load it. */
export async function prepareMxTarget(
  shaping: ShapingConfig,
  text: string,
  name: string,
  header: string,
): Promise<TargetResult> {
  const file = mxTargetFile(shaping);
  if (!file)
    return {
      ok: false,
      issues: [
        'shaping.siteRulesDir is empty: the MX rules of an update are written there, so set it (docs/deliverability-update.md)',
      ],
    };
  const alone = await parseRulePack(text, name);
  if (!alone.ok) return { ok: false, issues: alone.issues.map(formatIssue) };
  const base = shaping.rulesFiles.length > 0 ? shaping.rulesFiles : [shippedPackPath];
  const site = listSiteFiles(shaping.siteRulesDir).filter((f) => resolve(f) !== resolve(file));
  // Exactly the MTA's order (listSiteFiles): in locale order "00_local.yaml" came before this file,
  // and a layering the MTA then refused was accepted.
  const ordered = [...site.map((f) => ({ file: f, text: undefined as string | undefined })), { file, text }].sort(
    (a, b) => bySiteFileName(a.file, b.file),
  );
  const texts: Array<{ file: string; text: string }> = [];
  try {
    for (const f of base) texts.push({ file: f, text: readFileSync(f, 'utf8') });
    for (const entry of ordered)
      texts.push(
        entry.text === undefined
          ? { file: entry.file, text: readFileSync(entry.file, 'utf8') }
          : { file: name, text: entry.text },
      );
  } catch (error) {
    return { ok: false, issues: [`cannot read the rule files it layers with: ${(error as Error).message}`] };
  }
  const layered = await loadRuleTexts(texts);
  if (!layered.ok) return { ok: false, issues: layered.issues.map(formatIssue) };
  const target: PackTarget = { file, content: `${header}${text.endsWith('\n') ? text : `${text}\n`}` };
  // The header makes the file larger than the text checked: the MTA would refuse the file it watches.
  if (Buffer.byteLength(target.content, 'utf8') > maxPackBytes)
    return { ok: false, issues: [`${file}:1: (file): a rule pack is at most ${maxPackBytes} bytes`] };
  return { ok: true, target };
}
