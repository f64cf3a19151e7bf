import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { checkMxPacks } from '../shaping/pack-check.ts';
import { formatIssue, maxPackBytes, type PackIssue } from '../shaping/rule-pack.ts';
import { CliExit, printJson, type CliContext } from './context.ts';
import { registerRuleVersionCommands } from './rules-versions-command.ts';

// `herald rules check FILE...`: validates MX rule packs (each file alone, then layered over the
// shipped pack the way the MTA loads them). No database needed: usable in CI and before a deploy.
// `herald rules versions|update|rollback` (rule-pack versions) are in rules-versions-command.ts.

export function registerRulesCommands(program: Command, context: CliContext): void {
  const rules = program
    .command('rules')
    .description(
      'MX rule packs: validate before deploying (bounce packs: herald bounce rules check); versions, update and rollback of both',
    );
  registerRuleVersionCommands(rules, context);

  rules
    .command('check <files...>')
    .description('validate MX rule pack files; exit 1 with file:line errors')
    .option('--standalone', 'check the files as a complete set, without the shipped pack underneath')
    .option('--json', 'print the result as one JSON object')
    .action(async (files: string[], options: { json?: boolean; standalone?: boolean }) => {
      const inputs = files.map((file) => ({ file, ...readPack(file) }));
      const checked = await checkMxPacks(inputs, options.standalone ?? false);
      const { ok, files: results, layered } = checked;
      if (options.json) {
        printJson(context, checked);
      } else {
        for (const result of results) {
          if (result.ok)
            context.output.out(`${result.file}: ok (${result.rules} rules, ${result.backoff} backoff rules)`);
          else for (const issue of result.issues) context.output.err(formatIssue(issue));
        }
        if (layered?.ok)
          context.output.out(
            `layered${options.standalone ? '' : ' over the shipped pack'}: ${layered.rules.length} rules, generic rule "${layered.rules.at(-1)!}" last, version ${layered.version}`,
          );
        else if (layered) for (const issue of layered.issues) context.output.err(formatIssue(issue));
      }
      if (!ok) throw new CliExit(1);
    });
}

function readPack(file: string): { text: string } | { issue: PackIssue } {
  try {
    if (statSync(file).size > maxPackBytes)
      return { issue: { file, line: 1, path: '(file)', message: `a rule pack is at most ${maxPackBytes} bytes` } };
    return { text: readFileSync(file, 'utf8') };
  } catch (error) {
    return { issue: { file, line: 1, path: '(file)', message: `cannot read: ${(error as Error).message}` } };
  }
}
