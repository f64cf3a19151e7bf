import { resolve } from 'node:path';
import type { Command } from 'commander';
import { compileBounceRules } from '../bounce/classifier.ts';
import {
  evaluateCorpus,
  formatAgreement,
  parseLabels,
  type ClassifiedRecipient,
  type CorpusEvaluation,
} from '../bounce/corpus-evaluation.ts';
import { loadBouncePack, SHIPPED_BOUNCE_PACK } from '../bounce/rule-pack.ts';
import { AppError } from '../common/errors.ts';
import { classifyBounceFile, readLimited } from './bounce-files.ts';
import { printJson, type CliContext } from './context.ts';

// `herald bounce evaluate DIR`: classifies every file a labelled corpus names (DIR/expected.json,
// the shared Sisimai format) and prints the agreement: category, DSN status and hard/soft
// accuracy, the confusion matrix and the misclassified recipients.

const MAX_LABELS_BYTES = 16 * 1024 * 1024;
const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerBounceEvaluateCommand(bounce: Command, context: CliContext): void {
  bounce
    .command('evaluate')
    .description('measure the classifier on a labelled corpus (DIR/expected.json and the .eml files it names)')
    .argument('<dir>', 'corpus folder')
    .option('--rules <file>', 'site bounce rule pack layered over the shipped one (repeatable)', collect, [])
    .option(
      '--json',
      'one object: {"dir","packVersion","files","recipients","category","status","hardSoft","confusion","matrix","families","steps","misclassified"}',
    )
    .action(async (dir: string, options: { rules: string[]; json?: boolean }) => {
      const labelsFile = resolve(dir, 'expected.json');
      const data = await readLimited(labelsFile, MAX_LABELS_BYTES);
      if ('tooLarge' in data)
        throw new AppError('INPUT_TOO_LARGE', `${labelsFile} is ${data.tooLarge} bytes, over the 16 MiB limit`);
      const labels = parseLabels(new TextDecoder().decode(data), labelsFile);
      const classifier = compileBounceRules(await loadBouncePack([SHIPPED_BOUNCE_PACK, ...options.rules]));
      const files = [...new Set(labels.map((l) => l.file))];
      const lines: ClassifiedRecipient[] = [];
      for (const file of files) lines.push(...(await classifyBounceFile(resolve(dir, file), classifier)));
      const evaluation = evaluateCorpus(labels, lines);
      if (options.json)
        printJson(context, { dir, packVersion: classifier.version, files: files.length, ...evaluation });
      else printEvaluation(context, dir, classifier.version, files.length, evaluation);
    });
}

function printEvaluation(
  context: CliContext,
  dir: string,
  packVersion: string,
  files: number,
  e: CorpusEvaluation,
): void {
  const out = (line: string) => context.output.out(line);
  out(`corpus ${dir}: ${e.recipients} labelled recipients in ${files} files; bounce rule pack ${packVersion}`);
  out(`category accuracy     ${formatAgreement(e.category)}`);
  out(`DSN status accuracy   ${formatAgreement(e.status)}  (labels with a real status; 5.0.9xx placeholders left out)`);
  out(`hard/soft agreement   ${formatAgreement(e.hardSoft)}`);
  out(`decided by            ${e.steps.map((s) => `${s.step} ${formatAgreement(s)}`).join(', ')}`);
  out('');
  out('confusions (expected → given):');
  if (e.confusion.length === 0) out('  none');
  for (const c of e.confusion) out(`  ${String(c.count).padStart(4)}  ${c.expected} → ${c.given}`);
  out('');
  printMatrix(out, e.matrix);
  const weak = e.families.filter((f) => f.correct < f.total);
  out('');
  out(`families below 100%: ${weak.map((f) => `${f.family} ${f.correct}/${f.total}`).join(', ') || 'none'}`);
  out('');
  out('misclassified (file#recipient: expected → given [status] decided by: diagnostic):');
  if (e.misclassified.length === 0) out('  none');
  for (const m of e.misclassified)
    out(
      `  ${m.file}#${m.index}: ${m.expected} → ${m.given} [${m.givenStatus || '-'}] ${m.decidedBy ?? m.ruleId ?? 'none'}: ${m.diagnostic.slice(0, 160)}`,
    );
}

/** Rows are the expected categories, columns the given ones, numbered (a legend names them). */
function printMatrix(out: (line: string) => void, matrix: Record<string, Record<string, number>>): void {
  const rows = Object.keys(matrix).sort();
  const columns = [...new Set([...rows, ...rows.flatMap((r) => Object.keys(matrix[r]!))])].sort();
  const number = new Map(columns.map((c, i) => [c, i + 1]));
  const width = Math.max(3, ...rows.map((r) => String(number.get(r)).length + r.length + 1));
  out('confusion matrix (rows: expected, columns: given):');
  out(`  ${' '.repeat(width)} ${columns.map((c) => String(number.get(c)).padStart(3)).join('')}`);
  for (const r of rows)
    out(
      `  ${`${number.get(r)} ${r}`.padEnd(width)} ${columns
        .map((c) => String(matrix[r]![c] ?? '.').padStart(3))
        .join('')}`,
    );
  out(`  columns: ${columns.map((c) => `${number.get(c)}=${c}`).join(' ')}`);
}
