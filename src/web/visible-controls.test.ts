import { describe, expect, it } from 'vitest';
import { showBidiControls } from './visible-controls.ts';

describe('showBidiControls (and every other invisible character)', () => {
  it.each([
    ['user@\u202Emoc.elpmaxe', 'user@[U+202E]moc.elpmaxe'],
    ['\u2066a\u2069 \u2067b\u2069 \u2068c\u2069', '[U+2066]a[U+2069] [U+2067]b[U+2069] [U+2068]c[U+2069]'],
    ['\u202Aa\u202C\u202Bb\u202C\u202Dc', '[U+202A]a[U+202C][U+202B]b[U+202C][U+202D]c'],
    ['\u200E\u200F\u061C', '[U+200E][U+200F][U+061C]'],
    // Invisible format characters: zero-width space, joiners and marks, word joiner, invisible
    // operators, BOM, soft hyphen, a tag character (hidden text), a Hangul filler (a blank name).
    ['pay\u200Bpal.example', 'pay[U+200B]pal.example'],
    ['\u200C\u200D\u2060\u2061\u2062\u2063\u2064', '[U+200C][U+200D][U+2060][U+2061][U+2062][U+2063][U+2064]'],
    ['\uFEFFInvoice\u00AD', '[U+FEFF]Invoice[U+00AD]'],
    ['ok\u{E0069}\u{E0067}', 'ok[U+E0069][U+E0067]'],
    ['\u3164\u115F', '[U+3164][U+115F]'],
    // A variation selector only picks how the character before it is drawn: left alone.
    ['\u2764\uFE0F sale', '\u2764\uFE0F sale'],
    // Text in a right-to-left script is not a control: it is shown as it is.
    ['שלום@example.com', 'שלום@example.com'],
    ['550 5.1.1 <user@example.com> unknown', '550 5.1.1 <user@example.com> unknown'],
    ['', ''],
  ])('%j → %j', (text, shown) => {
    expect(showBidiControls(text)).toBe(shown);
  });
});
