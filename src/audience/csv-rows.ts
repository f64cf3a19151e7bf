import { AppError } from '../common/errors.ts';
import type { AddressCheck } from './address.ts';

// Pure decisions over parsed CSV records: what the header means, and whether each row is accepted.

export interface CsvHeader {
  columns: string[];
  emailIndex: number;
  /** Each column name as a JSON string. */
  keys: string[];
}

/** Reads the header row; fails with CSV_NO_EMAIL_COLUMN or CSV_UNREADABLE naming what is wrong. */
export function readHeader(fields: string[], file: string): CsvHeader {
  const columns = fields.map((field) => field.trim());
  const emailIndexes = columns.flatMap((name, index) => (name.toLowerCase() === 'email' ? [index] : []));
  if (emailIndexes.length === 0) {
    const found = columns.map((name) => JSON.stringify(name)).join(', ');
    const onlyOne = columns.length === 1 ? (columns[0] ?? '') : '';
    const hint = /[;\t|]/.test(onlyOne)
      ? ' (the file seems to use another separator than a comma; save it as comma-separated)'
      : '';
    throw new AppError(
      'CSV_NO_EMAIL_COLUMN',
      `${file}: the header (line 1) has no "email" column; columns found: ${found}${hint}`,
      {
        details: { file, columns },
      },
    );
  }
  if (emailIndexes.length > 1) {
    throw new AppError(
      'CSV_UNREADABLE',
      `${file}: the header (line 1) has ${emailIndexes.length} email columns; keep one`,
      { details: { file, columns } },
    );
  }
  const seen = new Set<string>();
  columns.forEach((name, index) => {
    if (name === '')
      throw new AppError('CSV_UNREADABLE', `${file}: column ${index + 1} of the header (line 1) has no name`, {
        details: { file, columns },
      });
    if (seen.has(name))
      throw new AppError(
        'CSV_UNREADABLE',
        `${file}: column ${JSON.stringify(name)} appears twice in the header (line 1)`,
        { details: { file, columns } },
      );
    seen.add(name);
  });
  return { columns, emailIndex: emailIndexes[0] as number, keys: columns.map((name) => JSON.stringify(name)) };
}

export type RowDecision =
  | { kind: 'accepted'; email: string; domain: string; data: string }
  | { kind: 'rejected'; reason: string; message: string; excerpt: string };

export type ValidateAddress = (raw: string) => AddressCheck;

const excerptChars = 120;

/** The start of a record as the operator would recognise it, on one line. */
export function excerptOf(fields: string[]): string {
  const text = fields.join(',');
  const cut = text.length > excerptChars ? `${text.slice(0, excerptChars)}…` : text;
  return withoutNul(cut.replace(/\r/g, '\\r').replace(/\n/g, '\\n'));
}

/**
 * A NUL spelled `\0`: PostgreSQL's text type cannot hold one, and a single rejected row quoting it
 * (in its excerpt, or in its message: the domain of `bob@a\0b.com`) failed the whole import there.
 */
function withoutNul(text: string): string {
  return text.includes('\0') ? text.replace(/\0/g, '\\0') : text;
}

/**
 * Personalization data: every column but email, as a JSON object in header order, values kept as
 * strings (CR/LF included: the message builder must never copy them into a header). Built as text
 * from precomputed key prefixes: this runs once per row of million-row files.
 */
function dataOf(fields: string[], header: CsvHeader): string {
  let json = '';
  for (let i = 0; i < fields.length; i++) {
    if (i === header.emailIndex) continue;
    json += `${json === '' ? '{' : ','}${header.keys[i] as string}:${JSON.stringify(fields[i])}`;
  }
  return json === '' ? '{}' : `${json}}`;
}

export function decideRow(fields: string[], header: CsvHeader, validate: ValidateAddress): RowDecision {
  if (fields.length !== header.columns.length) {
    return {
      kind: 'rejected',
      reason: 'column_count',
      message: `${fields.length} fields where the header has ${header.columns.length}`,
      excerpt: excerptOf(fields),
    };
  }
  const raw = fields[header.emailIndex] as string;
  if (raw.trim() === '')
    return { kind: 'rejected', reason: 'empty_email', message: 'the email field is empty', excerpt: excerptOf(fields) };
  const check = validate(raw);
  if (!check.ok)
    return { kind: 'rejected', reason: check.reason, message: withoutNul(check.message), excerpt: excerptOf(fields) };
  return { kind: 'accepted', email: check.email, domain: check.domain, data: dataOf(fields, header) };
}
