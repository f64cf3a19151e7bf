// Cross-validation of the bounce rule pack over a labelled corpus (default: test/corpus/bounces).
//
// Hand-written rules cannot be re-trained per fold, so each held-out part is measured with the
// pack *pruned of every rule that has no support outside it*: a rule is kept for a held-out fold
// (or MTA family) only if it decides at least one recipient of the other folds (families)
// correctly. A rule that exists only because of the held-out samples is thus removed before
// they are classified, which is what its absence would have meant had those samples never been
// seen. The figure is a pessimistic estimate of accuracy on unseen bounces; the gap between it
// and the whole-corpus figure measures how much the pack leans on single samples.
//
// Usage: node --import tsx scripts/bounce-cross-validation.ts [--dir DIR] [--folds 5] [--repeats 10] [--json] [--verbose]
// Folds are by file (a stable hash of the file name); families are file names without their number.
// One split into folds is one draw: related files can land in the same fold by chance. --repeats
// draws that many splits (the first is the one reported in detail) and gives the mean and range.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compileBounceRules, normalizeReply, type BounceClassifier } from '../src/bounce/classifier.ts';
import {
  evaluateCorpus,
  familyOf,
  formatAgreement,
  parseLabels,
  RENAMED_LABELS,
  type ClassifiedRecipient,
  type LabelledRecipient,
} from '../src/bounce/corpus-evaluation.ts';
import { parseBounceMessages } from '../src/bounce/parse-bounce.ts';
import type { ParsedBounce, ParsedRecipient } from '../src/bounce/parsed-bounce.ts';
import { reportLinesForMessages } from '../src/bounce/report-lines.ts';
import { loadBouncePack, type BouncePack } from '../src/bounce/rule-pack.ts';
import { bounceCorpusDir } from '../test/support/corpus.ts';
import { splitAlternatives } from './regex-alternatives.ts';

// `… --verbose | head`: the reader went away; stop quietly, as bin/herald.js does.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: bounceCorpusDir },
    folds: { type: 'string', default: '5' },
    repeats: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
  },
});
const dir = values.dir;
const folds = Number(values.folds);
if (!Number.isInteger(folds) || folds < 2) throw new Error(`--folds must be an integer ≥ 2, not "${values.folds}"`);
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1)
  throw new Error(`--repeats must be an integer ≥ 1, not "${values.repeats}"`);

const labelsFile = resolve(dir, 'expected.json');
const labels = parseLabels(readFileSync(labelsFile, 'utf8'), labelsFile);
const files = [...new Set(labels.map((l) => l.file))];
const parsed = new Map<string, ParsedBounce[]>();
for (const file of files) parsed.set(file, await parseBounceMessages(readFileSync(resolve(dir, file))));
const pack = await loadBouncePack();

function classifyAll(classifier: BounceClassifier, only: Set<string>): ClassifiedRecipient[] {
  return [...only].flatMap((file) => reportLinesForMessages(file, parsed.get(file)!, classifier));
}

// Support is counted per phrase alternative: a rule's text regexes are split at their top-level
// `|`, a group that makes up a whole alternative counting as its own alternatives
// (regex-alternatives.ts), and a recipient supports the alternatives that match its diagnostic. A rule without text
// is one unit and is never pruned. A rule keeps, per held-out part, only its alternatives supported
// elsewhere.
const wholeLines = classifyAll(compileBounceRules(pack), new Set(files));
const whole = evaluateCorpus(labels, wholeLines);
const lineOf = new Map(wholeLines.map((l) => [`${l.file}#${l.index}`, l]));
const recipientOf = new Map<string, ParsedRecipient>(
  files.flatMap((file) =>
    parsed
      .get(file)!
      .flatMap((m) => m.recipients)
      .map((r, i) => [`${file}#${i + 1}`, r] as const),
  ),
);
const units = new Map(pack.rules.map((rule) => [rule.id, (rule.text ?? []).flatMap(splitAlternatives)]));
const supportOf = new Map<string, LabelledRecipient[]>();
for (const label of labels) {
  const key = `${label.file}#${label.index}`;
  const line = lineOf.get(key);
  if (!line?.ruleId || line.category !== (RENAMED_LABELS[label.reason] ?? label.reason)) continue;
  const alternatives = units.get(line.ruleId);
  const recipient = recipientOf.get(key);
  const text = recipient ? normalizeReply({ code: null, enhanced: null, text: recipient.diagnostic }).text : '';
  const matched = alternatives?.length ? alternatives.filter((a) => new RegExp(a, 'i').test(text)) : [''];
  for (const a of matched) {
    const unit = `${line.ruleId}\u0000${a}`;
    supportOf.set(unit, [...(supportOf.get(unit) ?? []), label]);
  }
}

/** The pack without the rules (and phrase alternatives) no recipient outside `heldOut` supports. */
function prunedFor(heldOut: (l: LabelledRecipient) => boolean): BouncePack {
  const supported = (ruleId: string, alternative: string) =>
    (supportOf.get(`${ruleId}\u0000${alternative}`) ?? []).some((l) => !heldOut(l));
  const rules = pack.rules.flatMap((rule) => {
    const alternatives = units.get(rule.id) ?? [];
    // A rule that reads no wording (status, code, phase, action) states an RFC's meaning, not a sample's.
    if (alternatives.length === 0) return [rule];
    const kept = alternatives.filter((a) => supported(rule.id, a));
    return kept.length > 0 ? [{ ...rule, text: kept }] : [];
  });
  return { ...pack, rules };
}

function crossValidate(partOf: (file: string) => string) {
  const parts = [...new Set(files.map(partOf))].sort();
  const lines: ClassifiedRecipient[] = [];
  const perPart: Array<{ part: string; correct: number; total: number }> = [];
  for (const part of parts) {
    const heldOutFiles = new Set(files.filter((f) => partOf(f) === part));
    const classifier = compileBounceRules(prunedFor((l) => heldOutFiles.has(l.file)));
    const partLines = classifyAll(classifier, heldOutFiles);
    lines.push(...partLines);
    const e = evaluateCorpus(
      labels.filter((l) => heldOutFiles.has(l.file)),
      partLines,
    );
    perPart.push({ part, correct: e.category.correct, total: e.category.total });
  }
  return { evaluation: evaluateCorpus(labels, lines), perPart };
}

/** Split number `draw` into folds: the first hashes the file name alone, as it always has. */
const foldOf =
  (draw: number) =>
  (file: string): string =>
    `fold-${
      createHash('sha256')
        .update(draw === 0 ? file : `${draw}:${file}`)
        .digest()
        .readUInt32BE(0) % folds
    }`;
const kFold = crossValidate(foldOf(0));
const draws = [kFold, ...Array.from({ length: repeats - 1 }, (_, i) => crossValidate(foldOf(i + 1)))].map(
  (d) => d.evaluation.category.correct / d.evaluation.category.total,
);
const repeated = {
  repeats,
  mean: draws.reduce((sum, share) => sum + share, 0) / draws.length,
  min: Math.min(...draws),
  max: Math.max(...draws),
};
const byFamily = crossValidate(familyOf);

// Phrase alternatives (or rules) whose only support is one family: candidates for generalising.
const singleFamily = [...supportOf]
  .filter(([unit]) => !unit.endsWith('\u0000'))
  .filter(([, support]) => new Set(support.map((l) => familyOf(l.file))).size === 1)
  .map(([unit, support]) => ({
    rule: unit.replace('\u0000', unit.endsWith('\u0000') ? '' : ': '),
    family: familyOf(support[0]!.file),
    recipients: support.length,
  }));

const summary = (e: typeof whole) => ({
  category: e.category,
  status: e.status,
  hardSoft: e.hardSoft,
});
if (values.json) {
  console.log(
    JSON.stringify({
      dir,
      packVersion: pack.version,
      rules: pack.rules.length,
      wholeCorpus: summary(whole),
      kFold: { folds, ...summary(kFold.evaluation), perFold: kFold.perPart, repeatedCategory: repeated },
      leaveOneFamilyOut: {
        families: byFamily.perPart.length,
        ...summary(byFamily.evaluation),
        confusion: byFamily.evaluation.confusion,
      },
      singleFamilyRules: singleFamily,
    }),
  );
} else {
  const line = (name: string, e: typeof whole) =>
    console.log(
      `${name.padEnd(28)} category ${formatAgreement(e.category)}  status ${formatAgreement(e.status)}  hard/soft ${formatAgreement(e.hardSoft)}`,
    );
  console.log(`bounce rule pack ${pack.version} (${pack.rules.length} rules), corpus ${dir}`);
  line('whole corpus', whole);
  line(`${folds}-fold (pruned)`, kFold.evaluation);
  const percent = (share: number) => `${(100 * share).toFixed(1)}%`;
  console.log(
    `${`${folds}-fold, ${repeats} split${repeats === 1 ? '' : 's'}`.padEnd(28)} category mean ${percent(repeated.mean)} (${percent(repeated.min)}–${percent(repeated.max)})`,
  );
  line(`leave-one-family-out`, byFamily.evaluation);
  console.log(
    `  per fold: ${kFold.perPart.map((p) => `${p.part} ${((100 * p.correct) / p.total).toFixed(1)}% (${p.correct}/${p.total})`).join(', ')}`,
  );
  console.log(
    `  phrase alternatives supported by one family only: ${singleFamily.length} of ${supportOf.size} that decide something correctly`,
  );
  console.log('  top confusions, leave-one-family-out (expected → given):');
  for (const c of byFamily.evaluation.confusion.slice(0, 12))
    console.log(`    ${String(c.count).padStart(4)}  ${c.expected} → ${c.given}`);
  if (values.verbose) {
    for (const r of singleFamily) console.log(`  single-family rule ${r.rule}: ${r.family} (${r.recipients})`);
    for (const p of byFamily.perPart.filter((p) => p.correct < p.total))
      console.log(`  family ${p.part}: ${p.correct}/${p.total}`);
    // Every recipient missed when its fold (family) is held out: what decided it then, and what
    // the whole pack decided (a recipient the whole pack also misses is marked `also missed`).
    for (const [name, e] of [
      ['fold', kFold.evaluation],
      ['family', byFamily.evaluation],
    ] as const)
      for (const m of e.misclassified) {
        const line = lineOf.get(`${m.file}#${m.index}`);
        const whole = line?.category === m.expected ? `whole pack: ${line.decidedBy}` : 'also missed';
        console.log(
          `  ${name} held out, ${m.file}#${m.index}: ${m.expected} → ${m.given} [${m.givenStatus || '-'}] by ${m.decidedBy ?? 'none'}; ${whole}: ${m.diagnostic.slice(0, 160)}`,
        );
      }
  }
}
