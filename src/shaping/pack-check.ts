import { readFileSync } from 'node:fs';
import { loadRuleTexts, shippedPackPath } from './rule-loader.ts';
import { parseRulePack, type PackIssue } from './rule-pack.ts';

// `herald rules check` and the API: MX rule packs checked each alone, then layered over the shipped
// pack (unless standalone) the way the MTA loads them.

export type PackInput = { file: string; text: string } | { file: string; issue: PackIssue };

export async function checkMxPacks(inputs: readonly PackInput[], standalone: boolean) {
  const texts: Array<{ file: string; text: string }> = [];
  const files: Array<{ file: string; ok: boolean; rules: number; backoff: number; issues: PackIssue[] }> = [];
  for (const input of inputs) {
    if ('issue' in input) {
      files.push({ file: input.file, ok: false, rules: 0, backoff: 0, issues: [input.issue] });
      continue;
    }
    texts.push(input);
    const parsed = await parseRulePack(input.text, input.file);
    files.push(
      parsed.ok
        ? {
            file: input.file,
            ok: true,
            rules: parsed.pack.rules.length,
            backoff: parsed.pack.backoff.length,
            issues: [],
          }
        : { file: input.file, ok: false, rules: 0, backoff: 0, issues: parsed.issues },
    );
  }
  const filesOk = files.every((r) => r.ok);
  const base = standalone ? [] : [{ file: shippedPackPath, text: readFileSync(shippedPackPath, 'utf8') }];
  const layered = filesOk ? await loadRuleTexts([...base, ...texts]) : undefined;
  return {
    ok: filesOk && layered?.ok === true,
    files,
    layered:
      layered === undefined
        ? null
        : layered.ok
          ? {
              ok: true as const,
              version: layered.rules.version,
              rules: layered.rules.rules.map((r) => r.name),
              backoff: layered.rules.backoff.map((b) => b.name),
            }
          : { ok: false as const, issues: layered.issues },
  };
}
