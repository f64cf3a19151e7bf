import { describe, expect, it } from 'vitest';
import { printable } from './context.ts';

describe('printable', () => {
  it.each([
    ['\u001b[2Jcleared', '\\u001b[2Jcleared'],
    ['victim@\u202Eelpmaxe.knab', 'victim@\\u202eelpmaxe.knab'],
    // Before: printed as they are, invisible on every terminal.
    ['pay\u200Bpal.example', 'pay\\u200bpal.example'],
    ['\uFEFF\u2060\u2064x\u00AD', '\\ufeff\\u2060\\u2064x\\u00ad'],
    // A character past U+FFFF (a tag) as its two UTF-16 halves: a JSON line stays valid.
    ['a\u{E0041}b', 'a\\udb40\\udc41b'],
    ['\u2764\uFE0F tab\tok שלום', '\u2764\uFE0F tab\tok שלום'],
  ])('%j → %j', (line, shown) => {
    expect(printable(line)).toBe(shown);
  });

  it('keeps a JSON line valid and equal', () => {
    const line = JSON.stringify({ excerpt: 'zw\u200B\u{E0041}\u202E\u001b' });
    expect(JSON.parse(printable(line))).toEqual(JSON.parse(line));
  });
});
