import { bidiControlCharacters } from '../common/bidi-controls.ts';

// Unicode bidirectional controls are invisible and reorder the text after them: a recipient
// "user@\u202Emoc.elpmaxe" displays as "user@example.com", a bounce text or a delivery name can
// read as anything. Text Herald did not write (addresses, SMTP replies, names) reaches the
// dashboard's cells, so every such control is displayed as its code point instead: [U+202E].

const bidiControls = new RegExp(`[${bidiControlCharacters}]`, 'g');

/** `text` with each bidirectional control written as `[U+XXXX]`. */
export function showBidiControls(text: string): string {
  return text.replace(
    bidiControls,
    (control) => `[U+${control.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`,
  );
}
