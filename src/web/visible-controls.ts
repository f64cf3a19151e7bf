import { invisibleCharacterClass } from '../common/bidi-controls.ts';

// Unicode bidirectional controls are invisible and reorder the text after them: a recipient
// "user@\u202Emoc.elpmaxe" displays as "user@example.com", a bounce text or a delivery name can
// read as anything; zero-width and other format characters make two equal-looking texts differ.
// Text Herald did not write (addresses, SMTP replies, names) reaches the dashboard's cells, so every
// such character (common/bidi-controls.ts) is displayed as its code point instead: [U+202E].

const invisible = new RegExp(invisibleCharacterClass, 'gv');

/** `text` with each bidirectional control and other invisible character written as `[U+XXXX]`. */
export function showBidiControls(text: string): string {
  return text.replace(
    invisible,
    (control) => `[U+${control.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`,
  );
}
