import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileRules, type CompiledRules } from './compiled-rules.ts';
import {
  isGenericRule,
  maxPackBytes,
  parseRulePack,
  type BackoffRule,
  type MxRule,
  type PackIssue,
  type PackResult,
  type RulePack,
} from './rule-pack.ts';

// Layering: the shipped pack first, then the configured packs, then the site directory's *.yaml
// files in name order. A later rule with an existing name replaces it in place; a new rule is
// inserted just before the generic rule, so the catch-all always stays last.

export const shippedPackPath = fileURLToPath(new URL('../../rules/mx/default.yaml', import.meta.url));

export type LoadResult = { ok: true; rules: CompiledRules } | { ok: false; issues: PackIssue[] };

export interface RuleSources {
  /** Packs loaded in order; empty means the shipped pack alone. */
  rulesFiles?: readonly string[];
  /** A directory of site overrides (*.yaml, *.yml), applied after rulesFiles. */
  siteRulesDir?: string;
}

/** The ordered list of files the configuration designates. */
export function ruleFilesFor(sources: RuleSources): string[] {
  const files = sources.rulesFiles && sources.rulesFiles.length > 0 ? [...sources.rulesFiles] : [shippedPackPath];
  if (sources.siteRulesDir) files.push(...listSiteFiles(sources.siteRulesDir));
  return files;
}

export function listSiteFiles(directory: string): string[] {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return [];
  }
  // Hidden files are editors' (Emacs locks a file it edits with a dangling symlink `.#site.yaml`).
  // A *.yaml that cannot be stat'ed (a dangling link, removed meanwhile) stays listed: the load
  // refuses it by name and the rules in force stay. A throw here ended the MTA from the reload timer.
  return names
    .filter((name) => /\.ya?ml$/.test(name) && !name.startsWith('.'))
    .map((name) => join(directory, name))
    .sort(bySiteFileName)
    .filter((file) => {
      try {
        return statSync(file).isFile();
      } catch {
        return true;
      }
    });
}

/** The order site files are layered in: by file name, in UTF-16 code units ("00-a" before "00_a"), not by locale. */
export function bySiteFileName(a: string, b: string): number {
  const [x, y] = [basename(a), basename(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

export async function loadRuleFiles(files: readonly string[]): Promise<LoadResult> {
  const texts: Array<{ file: string; text: string }> = [];
  for (const file of files) {
    try {
      if (statSync(file).size > maxPackBytes) return failed(file, `a rule pack is at most ${maxPackBytes} bytes`);
      texts.push({ file, text: readFileSync(file, 'utf8') });
    } catch (error) {
      return failed(file, `cannot read: ${(error as Error).message}`);
    }
  }
  return loadRuleTexts(texts);
}

// What the last loads produced, so a load of unchanged files does no work again: `herald delivery
// eta`, `mx stats`, the doctor and every reload check load the rules, and with 2,000 site rules the
// YAML and the schema cost ~0.4 s per load, and a fresh CompiledRules has forgotten every MX host it
// matched (50,000 for a list of small domains). A pack is parsed again when its file's text differs
// from the text it was parsed from; the compiled rules are kept by version (the hash of every file
// name and text). Both are immutable once built; the oldest entries go past the limits.
const parsedPacks = new Map<string, { text: string; pack: RulePack }>();
const compiledByVersion = new Map<string, CompiledRules>();
const parsedPacksLimit = 64;
const compiledLimit = 4;

function remember<V>(map: Map<string, V>, key: string, value: V, limit: number): void {
  map.delete(key);
  if (map.size >= limit) map.delete(map.keys().next().value!);
  map.set(key, value);
}

async function parseOnce(file: string, text: string): Promise<PackResult> {
  const known = parsedPacks.get(file);
  if (known?.text === text) return { ok: true, pack: known.pack };
  const result = await parseRulePack(text, file);
  if (result.ok) remember(parsedPacks, file, { text, pack: result.pack }, parsedPacksLimit);
  return result;
}

export async function loadRuleTexts(texts: ReadonlyArray<{ file: string; text: string }>): Promise<LoadResult> {
  const hash = createHash('sha256');
  for (const { file, text } of texts) hash.update(file).update('\0').update(text).update('\0');
  const version = hash.digest('hex').slice(0, 12);
  const compiled = compiledByVersion.get(version);
  if (compiled) return { ok: true, rules: compiled };
  const packs: RulePack[] = [];
  const issues: PackIssue[] = [];
  for (const { file, text } of texts) {
    const result = await parseOnce(file, text);
    if (result.ok) packs.push(result.pack);
    else issues.push(...result.issues);
  }
  if (issues.length > 0) return { ok: false, issues };
  const layered = layerRulePacks(packs);
  if ('issues' in layered) return { ok: false, issues: layered.issues };
  const rules = compileRules({ version, files: texts.map((t) => t.file), ...layered });
  remember(compiledByVersion, version, rules, compiledLimit);
  return { ok: true, rules };
}

export function layerRulePacks(
  packs: readonly RulePack[],
): { rules: MxRule[]; backoff: BackoffRule[] } | { issues: PackIssue[] } {
  // Slots found by name in a map, not by a scan of the list per rule: with 2,000 site rules the
  // scans (two per rule, one testing every rule for the generic mask) took ~0.4 s per load.
  const slots: Array<{ rule: MxRule }> = [];
  const byName = new Map<string, { rule: MxRule }>();
  // The first slot holding a generic rule (new rules go just before it), undefined when none does.
  let generic: { rule: MxRule } | undefined;
  const firstGeneric = () => slots.find((slot) => isGenericRule(slot.rule));
  for (const pack of packs) {
    for (const rule of pack.rules) {
      const key = rule.name.toLowerCase();
      const sameName = byName.get(key);
      if (sameName) {
        sameName.rule = rule;
        if (sameName === generic || isGenericRule(rule)) generic = firstGeneric();
      } else if (isGenericRule(rule) && generic) {
        byName.delete(generic.rule.name.toLowerCase());
        generic.rule = rule;
        byName.set(key, generic);
      } else {
        const slot = { rule };
        byName.set(key, slot);
        if (generic)
          slots.splice(slots[slots.length - 1] === generic ? slots.length - 1 : slots.indexOf(generic), 0, slot);
        else {
          slots.push(slot);
          if (isGenericRule(rule)) generic = slot;
        }
      }
    }
  }
  const rules = slots.map((slot) => slot.rule);
  const backoffByName = new Map<string, BackoffRule>();
  for (const pack of packs) for (const rule of pack.backoff) backoffByName.set(rule.name.toLowerCase(), rule);
  const backoff = [...backoffByName.values()];
  const last = rules[rules.length - 1];
  if (!last || !isGenericRule(last)) {
    const file = packs[packs.length - 1]?.file ?? '(no rule files)';
    return {
      issues: [
        {
          file,
          line: 1,
          path: 'rules',
          message:
            'no generic rule: the layered rules must end with a rule of mask "*" for every public id, so every MX host has limits',
        },
      ],
    };
  }
  const shadowing = rules.findIndex(isGenericRule);
  if (shadowing !== rules.length - 1) {
    const rule = rules[shadowing]!;
    return {
      issues: [
        {
          file: rule.source.file,
          line: rule.source.line,
          path: 'rules',
          message: `rule "${rule.name}" matches every MX host, so the rules after it could never match`,
        },
      ],
    };
  }
  return { rules, backoff };
}

function failed(file: string, message: string): LoadResult {
  return { ok: false, issues: [{ file, line: 1, path: '(file)', message }] };
}
