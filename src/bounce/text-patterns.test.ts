import { describe, expect, it } from 'vitest';
import { compileTextPatterns } from './text-patterns.ts';

const SOURCES = [
  'user unknown|no such user',
  '(a)\\1b', // a backreference: run alone, its \1 keeps meaning its own group
  '(?<word>quota) exceeded',
  '^550 ',
  'mailbox (?:is )?full',
  '(x)(y)\\2',
  'relay(?:ing)? denied',
];
const TEXTS = [
  '550 5.1.1 User unknown',
  'aab and 550 mailbox full',
  'quota exceeded; xyy',
  'Relaying denied',
  'ab',
  'nothing here',
  '',
];

describe('text patterns joined per block', () => {
  for (const blockSize of [1, 2, 3, 8])
    it(`match as each RegExp alone (blocks of ${blockSize})`, () => {
      const patterns = compileTextPatterns(SOURCES, blockSize);
      for (const text of TEXTS) {
        const matches = patterns.forText(text);
        // Asked in any order, twice.
        for (const index of [6, 0, 3, 1, 5, 2, 4, 0, 6])
          expect([text, index, matches(index)]).toEqual([text, index, new RegExp(SOURCES[index]!, 'i').test(text)]);
      }
    });

  it('run a pattern with a backreference or a named group alone (joined, they would change or not compile)', () => {
    const patterns = compileTextPatterns(['(?<n>a)', '(?<n>b)', '(c)\\1', 'c'], 8);
    expect([0, 1, 2, 3].map(patterns.forText('cc b'))).toEqual([false, true, true, true]);
  });
});
