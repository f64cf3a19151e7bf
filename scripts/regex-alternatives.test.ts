import { describe, expect, it } from 'vitest';
import { loadBouncePack } from '../src/bounce/rule-pack.ts';
import { splitAlternatives } from './regex-alternatives.ts';

describe('splitAlternatives (the units the bounce cross-validation prunes)', () => {
  it('splits at the top-level bar only, past classes and escapes', () => {
    expect(splitAlternatives('no relaying|relay(?:ing)? (?:denied|not permitted)|[|(]\\|x')).toEqual([
      'no relaying',
      'relay(?:ing)? (?:denied|not permitted)',
      '[|(]\\|x',
    ]);
  });

  it('gives a group that is a whole alternative as its own alternatives, recursively, as if written apart', () => {
    expect(splitAlternatives('(?:pipe to|procmail|(exit \\d+|x-unix))')).toEqual([
      'pipe to',
      'procmail',
      'exit \\d+',
      'x-unix',
    ]);
    expect(splitAlternatives('a|(?:b|c)')).toEqual(['a', 'b', 'c']);
  });

  it('puts the word boundaries and anchors around the group on each alternative', () => {
    expect(splitAlternatives('\\b(?:spam|ube|uce)\\b')).toEqual(['\\bspam\\b', '\\bube\\b', '\\buce\\b']);
    expect(splitAlternatives('^(?:a|b)$')).toEqual(['^a$', '^b$']);
  });

  it('keeps a group that is part of a phrase, quantified, optional, a look-around or followed by anything', () => {
    for (const source of [
      'fail(?:s|ed)',
      '(?:a|b) c',
      '(?:a|b)?',
      '(?:a|b)+',
      '(?:a|)',
      '(?!a|b)',
      '(?<=a|b)c',
      '(?<name>a|b)',
      '(?:a|b)(?:c|d)',
      '\\((?:a|b)\\)',
    ])
      expect({ source, units: splitAlternatives(source) }).toEqual({ source, units: [source] });
  });

  it('gives units that match together what every shipped pattern matches', async () => {
    for (const rule of (await loadBouncePack()).rules)
      for (const text of rule.text ?? []) {
        const units = splitAlternatives(text);
        for (const unit of units) expect(() => new RegExp(unit, 'i')).not.toThrow();
        if (rule.example) {
          const whole = new RegExp(text, 'i').test(rule.example);
          expect({ rule: rule.id, text, whole }).toEqual({
            rule: rule.id,
            text,
            whole: units.some((u) => new RegExp(u, 'i').test(rule.example!)),
          });
        }
      }
  });
});
