import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

// Issue 13 item 9: docs/error-codes.md lists exactly the codes Herald raises. Both ways: every code
// of the ErrorCode type is in the table and raised somewhere in src/ (a quoted literal outside
// errors.ts), and every code of the table is in the type.

const root = resolve(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

it('docs/error-codes.md and the ErrorCode type list the same codes, and each is raised', () => {
  const errors = readFileSync(join(root, 'src/common/errors.ts'), 'utf8');
  const union = errors.slice(
    errors.indexOf('export type ErrorCode'),
    errors.indexOf(';', errors.indexOf('export type ErrorCode')),
  );
  const typed = [...union.matchAll(/'([A-Z][A-Z_]+)'/g)].map((m) => m[1]!).sort();
  const doc = readFileSync(join(root, 'docs/error-codes.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| ([A-Z][A-Z_]+) \|/gm)].map((m) => m[1]!).sort();
  expect(documented).toEqual(typed);

  const sources = sourceFiles(join(root, 'src'))
    .filter((file) => !file.endsWith('common/errors.ts'))
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
  const neverRaised = typed.filter((code) => code !== 'INTERNAL' && !sources.includes(`'${code}'`));
  expect(neverRaised).toEqual([]);
});
