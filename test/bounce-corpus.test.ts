import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../src/cli/context.ts';
import { runCli } from '../src/cli/main.ts';

// Runs `herald bounce classify --json` over the shared Sisimai corpus and measures agreement with
// its labels. Sisimai's older reason names map onto today's categories.

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const corpus = resolve(repoRoot, '../shared/corpus/bounces');
const RENAMED: Record<string, string> = { speeding: 'ratelimited', toomanyconn: 'ratelimited', mesgtoobig: 'emailtoolarge' };

interface Expected {
  file: string;
  index: number;
  status: string;
  replyCode: string;
  reason: string;
  hardBounce: boolean;
}

describe('bounce corpus', () => {
  it('agrees with the corpus labels', async () => {
    const expected = JSON.parse(readFileSync(resolve(corpus, 'expected.json'), 'utf8')) as Expected[];
    const files = readdirSync(corpus).filter((f) => f.endsWith('.eml')).sort();
    const out: string[] = [];
    const err: string[] = [];
    const context: CliContext = { output: { out: (l) => out.push(l), err: (l) => err.push(l) }, open: () => Promise.reject(new Error('no database needed')) };
    const code = await runCli(['node', 'herald', 'bounce', 'classify', '--json', ...files.map((f) => resolve(corpus, f))], context);
    expect(code).toBe(0);
    expect(err).toEqual([]);
    const lines = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const line of lines) expect(Object.keys(line)).toEqual(expect.arrayContaining(['file', 'recipient', 'status', 'replyCode', 'category', 'reason', 'type']));
    const byFile = new Map<string, Record<string, unknown>[]>();
    for (const line of lines) byFile.set(String(line.file), [...(byFile.get(String(line.file)) ?? []), line]);
    expect([...byFile.keys()].sort()).toEqual(files);

    let category = 0;
    let hard = 0;
    let status = 0;
    let statusTotal = 0;
    const families = new Map<string, [number, number]>();
    for (const e of expected) {
      const got = byFile.get(e.file)?.[e.index - 1];
      const agrees = got?.category === (RENAMED[e.reason] ?? e.reason);
      if (agrees) category++;
      if ((got?.type === 'hard') === e.hardBounce) hard++;
      // 5.0.9xx are Sisimai-internal placeholders, not statuses a report carries.
      if (e.status && !/\.9\d\d$/.test(e.status)) {
        statusTotal++;
        if (got?.status === e.status) status++;
      }
      const family = e.file.replace(/-\d+\.eml$/, '');
      const [ok, total] = families.get(family) ?? [0, 0];
      families.set(family, [ok + (agrees ? 1 : 0), total + 1]);
    }
    const ratio = (n: number, d: number): string => `${((100 * n) / d).toFixed(1)}% (${n}/${d})`;
    console.log(`bounce corpus: category accuracy ${ratio(category, expected.length)}, DSN status accuracy ${ratio(status, statusTotal)}, hard-bounce agreement ${ratio(hard, expected.length)}`);
    const weak = [...families].filter(([, [ok, total]]) => ok < total).map(([f, [ok, total]]) => `${f} ${ok}/${total}`);
    console.log(`families below 100%: ${weak.join(', ')}`);
    expect(category / expected.length).toBeGreaterThanOrEqual(0.9);
    expect(status / statusTotal).toBeGreaterThanOrEqual(0.93);
    expect(hard / expected.length).toBeGreaterThanOrEqual(0.9);
  });
});
