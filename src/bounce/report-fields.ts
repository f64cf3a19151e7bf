// Field blocks of machine-readable reports: message/delivery-status (RFC 3464 §2) and
// message/feedback-report (RFC 5965 §3). Both are header-like fields in blank-line separated
// groups; RFC 3464 puts per-message fields first, then one group per recipient.

export type FieldGroup = Map<string, string[]>;

const MAX_GROUPS = 1000;

/** Splits report text into field groups (lower-cased names, unfolded values, repeated fields kept). */
export function parseFieldGroups(text: string): FieldGroup[] {
  const groups: FieldGroup[] = [];
  let current: FieldGroup | undefined;
  let lastName: string | undefined;
  for (const rawLine of text.split(/\r?\n/)) {
    if (rawLine.trim() === '') {
      current = undefined;
      lastName = undefined;
      continue;
    }
    if (/^[ \t]/.test(rawLine) && current && lastName) {
      const values = current.get(lastName);
      if (values && values.length > 0) values[values.length - 1] += ` ${rawLine.trim()}`;
      continue;
    }
    const match = /^([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*)$/.exec(rawLine);
    if (!match) continue;
    if (!current) {
      if (groups.length >= MAX_GROUPS) break;
      current = new Map();
      groups.push(current);
    }
    lastName = match[1]!.toLowerCase();
    const values = current.get(lastName) ?? [];
    values.push(match[2]!.trim());
    current.set(lastName, values);
  }
  return groups;
}

export function firstField(group: FieldGroup | undefined, name: string): string | undefined {
  return group?.get(name)?.[0];
}

/** `rfc822; user@example.org` → `user@example.org`; `smtp; 550 5.1.1 ...` → `550 5.1.1 ...`. */
export function stripTypePrefix(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const match = /^\s*[A-Za-z0-9-]+\s*;\s*(.*)$/s.exec(value);
  return (match ? match[1]! : value).trim();
}

/**
 * The first address of a run of address characters: the look-behind lets a match start only where
 * such a run starts, so a long run with no valid `@domain` in it (sender-controlled text) is read
 * once, not once per character, which took seconds for 40,000 characters.
 */
const FIRST_ADDRESS = /(?<![^\s<>"'(),;:[\]])([^\s<>"'(),;:[\]]+@[A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])/;

/** An address from a report field or free text, without angle brackets, lower-cased. */
export function cleanAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const match = FIRST_ADDRESS.exec(value);
  return match ? match[1]!.toLowerCase() : undefined;
}
