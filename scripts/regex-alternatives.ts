// The phrase alternatives of a bounce rule's pattern, the unit the cross-validation counts support
// for and prunes (scripts/bounce-cross-validation.ts). Deliberately not a regex parser: it splits
// at the top-level `|`, and an alternative that is nothing but one group gives that group's own
// alternatives instead, so writing `(?:a|b|c)` prunes exactly as writing `a|b|c` does. Alternatives
// nested in a phrase (`fail(?:s|ed)`, `user(?: is)? unknown`) stay inside their phrase.

/** `a|(b|c)|d` → [`a`, `(b|c)`, `d`]: the alternatives at depth 0, classes and escapes skipped. */
function topLevelAlternatives(source: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      parts.push(source.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(source.slice(start));
  return parts;
}

// Zero-width assertions that distribute over an alternation unchanged: `\b(?:a|b)$` matches
// exactly what `\ba$|\bb$` matches. Anything else around the group (a quantifier, a literal, a
// look-around) makes the group part of a longer phrase.
const LEADING_ASSERTIONS = /^(?:\\b|\^)*/;
const TRAILING_ASSERTIONS = /^(?:\\b|\$)*$/;

/** `\b(?:a|b)\b` → { before: `\b`, inner: `a|b`, after: `\b` }; undefined unless the alternative is one group. */
function wholeGroup(alternative: string): { before: string; inner: string; after: string } | undefined {
  const before = LEADING_ASSERTIONS.exec(alternative)![0];
  const open = before.length;
  if (alternative[open] !== '(') return undefined;
  // Only a capturing group or `(?:`: look-arounds and named groups are not plain groups.
  const body = alternative.startsWith('(?:', open) ? open + 3 : alternative[open + 1] === '?' ? -1 : open + 1;
  if (body < 0) return undefined;
  let depth = 1;
  let inClass = false;
  for (let i = body; i < alternative.length; i++) {
    const c = alternative[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) {
      const after = alternative.slice(i + 1);
      return TRAILING_ASSERTIONS.test(after) ? { before, inner: alternative.slice(body, i), after } : undefined;
    }
  }
  return undefined;
}

/**
 * The phrase alternatives of a pattern: its top-level alternatives, where one that is entirely a
 * group (`(…)` or `(?:…)`, with only `\b`, `^` or `$` around it) is replaced by the group's own
 * alternatives (the assertions around each), recursively. Each result is a pattern of its own,
 * and together they match what the pattern matches.
 */
export function splitAlternatives(source: string): string[] {
  return topLevelAlternatives(source).flatMap((alternative) => {
    const group = wholeGroup(alternative);
    if (!group) return [alternative];
    const inner = splitAlternatives(group.inner);
    // `(?:a|)` is an optional `a`: splitting it would make a unit that matches everywhere.
    if (inner.length < 2 || inner.includes('')) return [alternative];
    return inner.map((a) => `${group.before}${a}${group.after}`);
  });
}
