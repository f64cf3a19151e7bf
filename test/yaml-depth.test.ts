import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// In a process of its own: before the depth check, the yaml package composed nested collections
// recursively, and this sequence — an MX pack, a bounce pack, then a config of 2,000 "[" — made V8
// abort the process ("FATAL ERROR: RegExpCompiler Allocation failed - process out of memory"),
// past any try/catch. Every validator now refuses such a document before composing it.
const run = promisify(execFile);
const src = (path: string) => JSON.stringify(resolve(import.meta.dirname, '../src', path));
const script = `
const { parseRulePack } = await import(${src('shaping/rule-pack.ts')});
const { validateBouncePackText } = await import(${src('bounce/rule-pack.ts')});
const { validateYaml } = await import(${src('common/yaml-source.ts')});
const { configSchema } = await import(${src('config/schema.ts')});
const text = 'rules: ' + '['.repeat(2000) + ']'.repeat(2000) + '\\n';
const mx = await parseRulePack(text, 'mx.yaml');
const bounce = await validateBouncePackText(text, 'bounce.yaml');
const config = validateYaml(text, 'herald.yaml', configSchema);
console.log(JSON.stringify({ mx: mx.issues.map((i) => i.file + ':' + i.line + ': ' + i.message), bounce: bounce.issues.map((i) => i.file + ':' + i.line + ': ' + i.message), config: config.errors }));
`;

it('refuses collections nested deeper than 64 levels in packs and config, naming file:line, without ending the process', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: resolve(import.meta.dirname, '..'),
  });
  const message = 'collections nested more than 64 levels deep: no Herald file needs that';
  expect(JSON.parse(stdout)).toEqual({
    mx: [`mx.yaml:1: ${message}`],
    bounce: [`bounce.yaml:1: ${message}`],
    config: [`herald.yaml:1: ${message}`],
  });
}, 60_000);
