import { describe, expect, it } from 'vitest';
import type { CorpusEvaluation } from '../src/bounce/corpus-evaluation.ts';
import type { CliContext } from '../src/cli/context.ts';
import { runCli } from '../src/cli/main.ts';
import { bounceCorpusDir } from './support/corpus.ts';

// Runs `herald bounce evaluate --json` over the shared Sisimai corpus and holds the figures to
// floors measured on it (docs/bounce-rules.md gives the current figures and how to measure
// generalisation with scripts/bounce-cross-validation.ts).

describe('bounce corpus', () => {
  it('agrees with the corpus labels', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const context: CliContext = {
      output: { out: (l) => out.push(l), err: (l) => err.push(l) },
      open: () => Promise.reject(new Error('no database needed')),
    };
    const code = await runCli(['node', 'herald', 'bounce', 'evaluate', '--json', bounceCorpusDir], context);
    expect(code).toBe(0);
    expect(err).toEqual([]);
    expect(out).toHaveLength(1);
    const e = JSON.parse(out[0]!) as CorpusEvaluation & { files: number };
    expect(e.files).toBe(268);
    expect(e.recipients).toBe(281);
    const ratio = (a: { correct: number; total: number; accuracy: number }) =>
      `${(100 * a.accuracy).toFixed(1)}% (${a.correct}/${a.total})`;
    console.log(
      `bounce corpus: category accuracy ${ratio(e.category)}, DSN status accuracy ${ratio(e.status)}, hard-bounce agreement ${ratio(e.hardSoft)}`,
    );
    console.log(`confusions: ${e.confusion.map((c) => `${c.expected}→${c.given} ${c.count}`).join(', ')}`);
    // Measured: 95.4% (268/281), 98.0% (200/204), 97.9% (275/281).
    expect(e.category.accuracy).toBeGreaterThanOrEqual(0.953);
    expect(e.status.accuracy).toBeGreaterThanOrEqual(0.975);
    expect(e.hardSoft.accuracy).toBeGreaterThanOrEqual(0.975);
    // Every verdict says which step decided; `none` only for `undefined`.
    for (const m of e.misclassified) expect(m.decidedBy === 'none').toBe(m.given === 'undefined');
  });
});
