// Unicode bidirectional controls: invisible, they reorder the text after them, so a string holding
// one displays as another ("user@\u202Emoc.elpmaxe" reads "user@example.com"). Other format
// characters are invisible too: a zero-width space or joiner, a word joiner or a BOM inside
// "pay\u200Bpal.example" or a delivery name makes two strings that look equal differ (a search, a
// filter or a copied address then fails without a visible cause), and tag characters
// (U+E0020–E007F) carry a whole hidden text. Text Herald did not write (addresses, SMTP replies,
// bounce texts, names) is shown with them spelled out: in the dashboard (web/visible-controls.ts)
// and on the terminal (cli/context.ts).
//
// Which ones: every format character (General_Category Cf: the bidi controls of Unicode Standard
// Annex #9, U+200B–U+200F, U+2060–U+2064, U+FEFF, the tags…) and every Default_Ignorable_Code_Point
// (what renders as nothing: the Hangul fillers U+115F, U+1160, U+3164, U+FFA0 that make a blank
// name, the combining grapheme joiner U+034F…), except variation selectors: they only choose how
// the character before them is drawn (U+FE0F after ❤ for the colour emoji) and hide nothing. A
// zero-width joiner inside an emoji sequence or a Persian word is spelled out too: exactness wins.

/** The characters to spell out, as a character class for a RegExp with the `v` flag (nestable in another class). */
export const invisibleCharacterClass = '[[\\p{Cf}\\p{Default_Ignorable_Code_Point}]--\\p{Variation_Selector}]';
