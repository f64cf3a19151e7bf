import { AppError } from '../common/errors.ts';

// Agreement of the classifier with a labelled bounce corpus (the shared Sisimai format:
// expected.json, one object per failed or notified recipient). Pure: the caller classifies the
// files and hands the lines in; `herald bounce evaluate`, the corpus test and the
// cross-validation script all measure with this one function.

export interface LabelledRecipient {
  file: string;
  index: number;
  /** Enhanced status; `""` when none. `5.0.9xx` are the labeller's placeholders, not real statuses. */
  status: string;
  replyCode: string;
  /** The expected category (the corpus calls it `reason`). */
  reason: string;
  hardBounce: boolean;
}

/** What the classifier said about one recipient (a subset of `bounce classify --json`'s line). */
export interface ClassifiedRecipient {
  file: string;
  index: number;
  category: string;
  status: string;
  type: string;
  ruleId: string | null;
  decidedBy?: string;
  diagnostic?: string;
}

export interface Agreement {
  correct: number;
  total: number;
  /** correct / total, 0 when total is 0. */
  accuracy: number;
}

export interface Misclassified {
  file: string;
  index: number;
  expected: string;
  given: string;
  expectedStatus: string;
  givenStatus: string;
  ruleId: string | null;
  decidedBy: string | null;
  diagnostic: string;
}

export interface CorpusEvaluation {
  recipients: number;
  category: Agreement;
  /** DSN status, over the recipients whose label has a real status. */
  status: Agreement;
  /** type `hard` ⇔ hardBounce. */
  hardSoft: Agreement;
  /** expected → given → count, misclassifications only. */
  confusion: Array<{ expected: string; given: string; count: number }>;
  /** Full matrix: expected category → given category → count (diagonal included). */
  matrix: Record<string, Record<string, number>>;
  families: Array<{ family: string } & Agreement>;
  /**
   * Which step of the fallback order decided, over the labelled recipients: `rule` (a rule reading
   * the wording, phase or MX host), `enhanced-status`, `reply-code`, `dsn-action`, `report` (the
   * report's kind), `none`; each with its category agreement.
   */
  steps: Array<{ step: string } & Agreement>;
  misclassified: Misclassified[];
}

/** Older label names of the corpus and the category Herald calls them today. */
export const RENAMED_LABELS: Readonly<Record<string, string>> = {
  speeding: 'ratelimited',
  toomanyconn: 'ratelimited',
  mesgtoobig: 'emailtoolarge',
};

/** `lhost-postfix-07.eml` → `lhost-postfix`: the MTA (or provider, or report kind) that wrote it. */
export function familyOf(file: string): string {
  return file.replace(/(?:-\d+)?\.eml$/, '');
}

const PLACEHOLDER_STATUS = /\.9\d\d$/;

/** Parses and checks expected.json; an error names the entry and the field. */
export function parseLabels(text: string, source: string): LabelledRecipient[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new AppError('INPUT_INVALID', `${source}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (!Array.isArray(data)) throw new AppError('INPUT_INVALID', `${source}: expected an array of labelled recipients`);
  return data.map((entry, i) => {
    const where = `${source}: entry [${i}]`;
    if (typeof entry !== 'object' || entry === null) throw new AppError('INPUT_INVALID', `${where}: not an object`);
    const e = entry as Record<string, unknown>;
    const text = (field: string, allowEmpty: boolean): string => {
      const value = e[field];
      if (typeof value !== 'string' || (!allowEmpty && value === ''))
        throw new AppError('INPUT_INVALID', `${where}.${field}: expected a ${allowEmpty ? '' : 'non-empty '}string`);
      return value;
    };
    if (!Number.isInteger(e.index) || (e.index as number) < 1)
      throw new AppError('INPUT_INVALID', `${where}.index: expected a positive integer`);
    if (typeof e.hardBounce !== 'boolean')
      throw new AppError('INPUT_INVALID', `${where}.hardBounce: expected true or false`);
    const file = text('file', false);
    if (file.includes('/') || file.includes('\\') || file.startsWith('.'))
      throw new AppError('INPUT_INVALID', `${where}.file: a file name in the corpus folder, not a path ("${file}")`);
    return {
      file,
      index: e.index as number,
      status: text('status', true),
      replyCode: text('replyCode', true),
      reason: text('reason', false),
      hardBounce: e.hardBounce,
    };
  });
}

export function evaluateCorpus(labels: LabelledRecipient[], lines: ClassifiedRecipient[]): CorpusEvaluation {
  const byKey = new Map(lines.map((l) => [`${l.file}#${l.index}`, l]));
  const category = counter();
  const status = counter();
  const hardSoft = counter();
  const matrix: Record<string, Record<string, number>> = {};
  const families = new Map<string, ReturnType<typeof counter>>();
  const steps = new Map<string, ReturnType<typeof counter>>();
  const misclassified: Misclassified[] = [];
  for (const label of labels) {
    const got = byKey.get(`${label.file}#${label.index}`);
    const expected = RENAMED_LABELS[label.reason] ?? label.reason;
    const given = got?.category ?? '(missing)';
    const agrees = given === expected;
    category.add(agrees);
    hardSoft.add((got?.type === 'hard') === label.hardBounce);
    if (label.status && !PLACEHOLDER_STATUS.test(label.status)) status.add(got?.status === label.status);
    const row = (matrix[expected] ??= {});
    row[given] = (row[given] ?? 0) + 1;
    const family = familyOf(label.file);
    if (!families.has(family)) families.set(family, counter());
    families.get(family)!.add(agrees);
    const step = stepOf(got);
    if (!steps.has(step)) steps.set(step, counter());
    steps.get(step)!.add(agrees);
    if (!agrees)
      misclassified.push({
        file: label.file,
        index: label.index,
        expected,
        given,
        expectedStatus: label.status,
        givenStatus: got?.status ?? '',
        ruleId: got?.ruleId ?? null,
        decidedBy: got?.decidedBy ?? null,
        diagnostic: got?.diagnostic ?? '',
      });
  }
  const confusion = Object.entries(matrix)
    .flatMap(([expected, row]) =>
      Object.entries(row)
        .filter(([given]) => given !== expected)
        .map(([given, count]) => ({ expected, given, count })),
    )
    .sort((a, b) => b.count - a.count || a.expected.localeCompare(b.expected) || a.given.localeCompare(b.given));
  return {
    recipients: labels.length,
    category: category.result(),
    status: status.result(),
    hardSoft: hardSoft.result(),
    confusion,
    matrix,
    families: [...families]
      .map(([family, c]) => ({ family, ...c.result() }))
      .sort((a, b) => a.family.localeCompare(b.family)),
    steps: [...steps].map(([step, c]) => ({ step, ...c.result() })).sort((a, b) => b.total - a.total),
    misclassified,
  };
}

const FALLBACK_STEPS = new Set(['enhanced-status', 'reply-code', 'dsn-action', 'none']);

function stepOf(line: ClassifiedRecipient | undefined): string {
  if (!line) return 'none';
  const decidedBy = line.decidedBy ?? line.ruleId ?? 'none';
  if (FALLBACK_STEPS.has(decidedBy)) return decidedBy;
  return decidedBy.startsWith('report.') ? 'report' : 'rule';
}

function counter() {
  let correct = 0;
  let total = 0;
  return {
    add(ok: boolean) {
      total++;
      if (ok) correct++;
    },
    result: (): Agreement => ({ correct, total, accuracy: total === 0 ? 0 : correct / total }),
  };
}

/** `90.7% (255/281)`. */
export function formatAgreement(a: Agreement): string {
  return `${(100 * a.accuracy).toFixed(1)}% (${a.correct}/${a.total})`;
}
