import { AppError } from '../common/errors.ts';

// What a list may be named. The API takes `[A-Za-z0-9][A-Za-z0-9_.-]{0,199}` in its paths; the CLI
// takes any name an operator can type and read back: `herald lists` prints names in a column, and
// `delivery create --list` and the dashboard name them again.

const maxListNameChars = 200;
// Controls (a newline, an escape sequence), format characters (bidi overrides, zero-width spaces) and
// line or paragraph separators: a name holding them does not read back as typed.
const unreadable = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** Why `name` cannot name a new list, or undefined when it can. */
function listNameProblem(name: string): string | undefined {
  if (name.trim() === '') return 'is empty';
  if (name.trim() !== name) return 'starts or ends with a space';
  if (name.length > maxListNameChars) return `is ${name.length} characters long (at most ${maxListNameChars})`;
  const character = name.match(unreadable)?.[0];
  if (character === undefined) return undefined;
  const codePoint = character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
  return `holds the character U+${codePoint}, which does not print`;
}

/** Fails with INPUT_INVALID, saying why, unless `name` can name a new list. */
export function checkListName(name: string): void {
  const problem = listNameProblem(name);
  if (problem)
    throw new AppError('INPUT_INVALID', `the list name ${JSON.stringify(name)} ${problem}: choose another`, {
      details: { list: name },
    });
}
