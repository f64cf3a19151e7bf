// Unicode bidirectional controls: invisible, they reorder the text after them, so a string holding
// one displays as another ("user@\u202Emoc.elpmaxe" reads "user@example.com"). Text Herald did not
// write (addresses, SMTP replies, names) is shown with them spelled out: in the dashboard
// (web/visible-controls.ts) and on the terminal (cli/context.ts).

/** ALM, LRM, RLM, LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI (Unicode Standard Annex #9, 2.1–2.6), as a character class body. */
export const bidiControlCharacters = '\\u061C\\u200E\\u200F\\u202A-\\u202E\\u2066-\\u2069';
