import { describe, expect, it } from 'vitest';
import { showBidiControls } from './visible-controls.ts';

describe('showBidiControls', () => {
  it.each([
    ['user@\u202Emoc.elpmaxe', 'user@[U+202E]moc.elpmaxe'],
    ['\u2066a\u2069 \u2067b\u2069 \u2068c\u2069', '[U+2066]a[U+2069] [U+2067]b[U+2069] [U+2068]c[U+2069]'],
    ['\u202Aa\u202C\u202Bb\u202C\u202Dc', '[U+202A]a[U+202C][U+202B]b[U+202C][U+202D]c'],
    ['\u200E\u200F\u061C', '[U+200E][U+200F][U+061C]'],
    // Text in a right-to-left script is not a control: it is shown as it is.
    ['שלום@example.com', 'שלום@example.com'],
    ['550 5.1.1 <user@example.com> unknown', '550 5.1.1 <user@example.com> unknown'],
    ['', ''],
  ])('%j → %j', (text, shown) => {
    expect(showBidiControls(text)).toBe(shown);
  });
});
