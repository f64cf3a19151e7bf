import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../src/cli/context.ts';
import { runCli } from '../src/cli/main.ts';
import { bounceCorpusFile } from './support/corpus.ts';

function capture(): { context: CliContext; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    context: {
      output: { out: (l) => out.push(l), err: (l) => err.push(l) },
      open: () => Promise.reject(new Error('no database needed')),
    },
  };
}

const label = (file: string, index: number, reason: string, status: string, hardBounce: boolean) => ({
  file,
  index,
  status,
  replyCode: '550',
  reason,
  hardBounce,
  feedbackType: null,
});

// A two-file corpus in the shared format: one label right, one deliberately wrong.
function smallCorpus(labels: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-evaluate-'));
  for (const f of ['lhost-postfix-02.eml', 'lhost-qmail-02.eml']) copyFileSync(bounceCorpusFile(f), join(dir, f));
  writeFileSync(join(dir, 'expected.json'), JSON.stringify(labels));
  return dir;
}

describe('herald bounce evaluate', () => {
  it('prints accuracy, the confusion matrix and the misclassified recipients', async () => {
    const dir = smallCorpus([
      label('lhost-qmail-02.eml', 1, 'userunknown', '5.1.1', true),
      label('lhost-postfix-02.eml', 2, 'hostunknown', '5.1.1', true),
    ]);
    const json = capture();
    expect(await runCli(['node', 'herald', 'bounce', 'evaluate', '--json', dir], json.context)).toBe(0);
    const e = JSON.parse(json.out[0]!);
    expect(e).toMatchObject({ files: 2, recipients: 2, category: { correct: 1, total: 2, accuracy: 0.5 } });
    expect(e.confusion).toEqual([{ expected: 'hostunknown', given: 'userunknown', count: 1 }]);
    expect(e.matrix).toEqual({ userunknown: { userunknown: 1 }, hostunknown: { userunknown: 1 } });
    expect(e.misclassified).toEqual([
      expect.objectContaining({
        file: 'lhost-postfix-02.eml',
        index: 2,
        expected: 'hostunknown',
        given: 'userunknown',
      }),
    ]);
    expect(e.families).toEqual([
      { family: 'lhost-postfix', correct: 0, total: 1, accuracy: 0 },
      { family: 'lhost-qmail', correct: 1, total: 1, accuracy: 1 },
    ]);

    expect(e.steps).toEqual([{ step: 'rule', correct: 1, total: 2, accuracy: 0.5 }]);

    const text = capture();
    expect(await runCli(['node', 'herald', 'bounce', 'evaluate', dir], text.context)).toBe(0);
    expect(text.out).toContain('category accuracy     50.0% (1/2)');
    expect(text.out).toContain('     1  hostunknown → userunknown');
    expect(text.out.some((l) => l.startsWith('  lhost-postfix-02.eml#2: hostunknown → userunknown'))).toBe(true);
  });

  it('names the entry and field of a bad label, and a labelled file that is missing', async () => {
    const bad = capture();
    const dir = smallCorpus([
      label('lhost-qmail-02.eml', 1, 'userunknown', '5.1.1', true),
      { file: 'x.eml', index: 0 },
    ]);
    expect(await runCli(['node', 'herald', 'bounce', 'evaluate', dir], bad.context)).not.toBe(0);
    expect(bad.err.join('\n')).toMatch(
      /INPUT_INVALID.*expected\.json: entry \[1\]\.index: expected a positive integer/,
    );

    const missing = capture();
    const dir2 = smallCorpus([label('lhost-nowhere-01.eml', 1, 'mailboxfull', '5.2.2', false)]);
    expect(await runCli(['node', 'herald', 'bounce', 'evaluate', dir2], missing.context)).not.toBe(0);
    expect(missing.err.join('\n')).toMatch(/NOT_FOUND.*lhost-nowhere-01\.eml/);
  });
});
