import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { validateAddress } from '../audience/address.ts';
import { AppError } from '../common/errors.ts';
import { validateYaml } from '../common/yaml-source.ts';
import { analyzeHtmlTemplate } from '../tracking/links.ts';
import { compileContent } from './content.ts';

// A delivery definition, from a YAML/JSON file or CLI flags. Bodies may be inline or in files
// (paths relative to the definition file).

/** A delivery's fair share of shared MX paths (src/mta/fair-share.ts): the allowed ranges. */
export const shareLimits = { priority: { min: 0, max: 9 }, weight: { min: 1, max: 100 } } as const;

/** The shortest validity a delivery may have: one minute. */
export const minValidityHours = 1 / 60;

// A time without its offset would be read in the time zone of whichever machine parses it.
const isoTimeOptions = { offset: true } as const;

/** An ISO 8601 time with its offset (`2026-06-01T09:00:00+02:00`, `…Z`), as milliseconds; `where` names it in the error. */
export function parseIsoTime(value: string, where: string): number {
  if (!z.string().datetime(isoTimeOptions).safeParse(value).success)
    throw new AppError(
      'INPUT_INVALID',
      `${where} "${value}" is not an ISO 8601 time with its offset, like 2026-06-01T09:00:00+02:00 or 2026-06-01T07:00:00Z`,
    );
  return Date.parse(value);
}

const definitionSchema = z
  .object({
    name: z.string().min(1).max(200),
    /** `news@example.com` or `Example News <news@example.com>`. */
    from: z.string().min(3).max(320),
    fromName: z.string().max(200).optional(),
    replyTo: z.string().max(320).optional(),
    subject: z.string().min(1).max(2_000),
    html: z.string().optional(),
    htmlFile: z.string().optional(),
    text: z.string().optional(),
    textFile: z.string().optional(),
    /** Name of the target list. */
    list: z.string().min(1).optional(),
    // At least a minute: 1e-9 hours was stored as a validity of 0 s, and every message expired unsent.
    validityHours: z
      .number()
      .min(minValidityHours, 'at least one minute (0.0167 hours)')
      .max(24 * 30)
      .optional(),
    affinity: z.string().min(1).optional(),
    /** 0–9: on an MX path shared with other deliveries, a higher priority sends first. */
    priority: z.number().int().min(shareLimits.priority.min).max(shareLimits.priority.max).optional(),
    /** 1–100: the share of a path's budget among deliveries of the same priority. */
    weight: z.number().int().min(shareLimits.weight.min).max(shareLimits.weight.max).optional(),
    /** ISO 8601 time at which sending starts (with `herald delivery start`). */
    scheduledAt: z.string().datetime(isoTimeOptions).optional(),
  })
  .strict();

/**
 * Tracked links of one HTML body. Each is signed and rewritten in every message on the MTA's thread:
 * 5,000 links cost 133 ms of CPU per message, 50,000 links 0.9 s (no SMTP socket served meanwhile).
 */
export const maxTrackedLinks = 1_000;

export const defaultPriority = 5;
export const defaultWeight = 1;

export type DeliveryDefinitionInput = z.infer<typeof definitionSchema>;

export interface DeliveryDefinition {
  name: string;
  fromAddress: string;
  fromName: string | null;
  replyTo: string | null;
  subject: string;
  html: string | null;
  text: string | null;
  listName: string | null;
  validityHours: number | null;
  affinity: string | null;
  /** Default 5 (defaultPriority). */
  priority?: number;
  /** Default 1 (defaultWeight). */
  weight?: number;
  scheduledAt: number | null;
}

export function readDefinitionFile(file: string): DeliveryDefinition {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AppError('NOT_FOUND', `cannot read delivery definition ${file}`, { cause });
  }
  const result = validateYaml(text, file, definitionSchema);
  if (!result.ok) throw new AppError('DELIVERY_INVALID', result.errors.join('\n'));
  return normalizeDefinition(result.value, dirname(resolve(file)), file);
}

export function definitionFromFlags(flags: Record<string, unknown>): DeliveryDefinition {
  const result = definitionSchema.safeParse(dropUndefined(flags));
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `--${kebab(String(issue.path[0] ?? ''))}: ${issue.message}`);
    throw new AppError('DELIVERY_INVALID', problems.join('\n'));
  }
  return normalizeDefinition(result.data, process.cwd(), 'flags');
}

/**
 * A definition sent as JSON (the HTTP API): bodies inline only, since a file path would read the
 * server's disk. Problems name the field (`/name`, `/from`).
 */
export function definitionFromJson(value: unknown): DeliveryDefinition {
  const result = definitionSchema.omit({ htmlFile: true, textFile: true }).strict().safeParse(value);
  if (!result.success) {
    const errors = result.error.issues.map((issue) => ({
      path: `/${issue.path.join('/')}`,
      message: issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message,
    }));
    throw new AppError('DELIVERY_INVALID', errors.map((e) => `${e.path}: ${e.message}`).join('; '), {
      details: { errors },
    });
  }
  return normalizeDefinition(result.data, process.cwd(), 'definition');
}

function normalizeDefinition(input: DeliveryDefinitionInput, baseDir: string, source: string): DeliveryDefinition {
  const from = parseMailbox(input.from, `${source}: from`);
  if (input.fromName !== undefined && controlCharacter.test(input.fromName))
    throw new AppError('DELIVERY_INVALID', `${source}: fromName: must be one line without control characters`);
  const replyTo = input.replyTo ? parseMailbox(input.replyTo, `${source}: replyTo`).address : null;
  const html = bodyFrom(input.html, input.htmlFile, 'html', baseDir, source);
  const text = bodyFrom(input.text, input.textFile, 'text', baseDir, source);
  if (html === null && text === null)
    throw new AppError('DELIVERY_INVALID', `${source}: a delivery needs an html or a text body`);
  // Templates are checked now so that a syntax error is reported at creation, with its file and line.
  try {
    compileContent({ subject: input.subject, html, text });
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== 'TEMPLATE_SYNTAX') throw error;
    const template = error.details.template as 'subject' | 'html' | 'text' | undefined;
    const file = template === 'html' ? input.htmlFile : template === 'text' ? input.textFile : undefined;
    const where = file ? resolve(baseDir, file) : `${source}: ${template ?? 'template'}`;
    throw new AppError('TEMPLATE_SYNTAX', `${where}: ${error.message}`, {
      cause: error.cause,
      details: { ...error.details, ...(file ? { file: resolve(baseDir, file) } : {}) },
    });
  }
  if (html !== null) {
    const tracked = analyzeHtmlTemplate(html).links.length;
    if (tracked > maxTrackedLinks) {
      const where = input.htmlFile ? resolve(baseDir, input.htmlFile) : `${source}: html`;
      throw new AppError(
        'DELIVERY_INVALID',
        `${where}: ${tracked} tracked links; at most ${maxTrackedLinks} (the MTA signs every tracked link of every message): mark the others data-herald-track="off"`,
      );
    }
  }
  return {
    name: input.name,
    fromAddress: from.address,
    fromName: input.fromName ?? from.name,
    replyTo,
    subject: input.subject,
    html,
    text,
    listName: input.list ?? null,
    validityHours: input.validityHours ?? null,
    affinity: input.affinity ?? null,
    priority: input.priority ?? defaultPriority,
    weight: input.weight ?? defaultWeight,
    scheduledAt: input.scheduledAt ? Date.parse(input.scheduledAt) : null,
  };
}

function bodyFrom(
  inline: string | undefined,
  file: string | undefined,
  name: string,
  baseDir: string,
  source: string,
): string | null {
  if (inline !== undefined && file !== undefined)
    throw new AppError('DELIVERY_INVALID', `${source}: give ${name} or ${name}File, not both`);
  if (file === undefined) return inline ?? null;
  try {
    return readFileSync(resolve(baseDir, file), 'utf8');
  } catch (cause) {
    throw new AppError('DELIVERY_INVALID', `${source}: ${name}File ${file} cannot be read`, { cause });
  }
}

const mailboxPattern = /^\s*(?:"?([^"<]*?)"?\s*<([^<>\s]+@[^<>\s]+)>|([^<>\s]+@[^<>\s]+))\s*$/;
// CR/LF, NUL and the other C0/C1 controls: never part of a display name (the message builder would fold them away).
const controlCharacter = /\p{Cc}/u;

export function parseMailbox(value: string, where: string): { name: string | null; address: string } {
  if (/[\r\n]/.test(value)) throw new AppError('DELIVERY_INVALID', `${where}: must be on one line`);
  const match = mailboxPattern.exec(value);
  if (!match)
    throw new AppError(
      'DELIVERY_INVALID',
      `${where}: "${value}" is not an address like news@example.com or Name <news@example.com>`,
    );
  // One mailbox, checked as recipient addresses are (docs/audience.md): `a@x.com,b@y.com` would be two
  // From or Reply-To mailboxes, a NUL would reach the SMTP envelope.
  const raw = (match[2] ?? match[3])!;
  const check = validateAddress(raw);
  if (!check.ok)
    throw new AppError('DELIVERY_INVALID', `${where}: "${printable(raw)}" is not a valid address: ${check.message}`);
  const name = match[1]?.trim() || null;
  if (name !== null && controlCharacter.test(name))
    throw new AppError('DELIVERY_INVALID', `${where}: the name must be one line without control characters`);
  return { name, address: check.email };
}

/** A value shown in an error: control characters as \u escapes. */
function printable(value: string): string {
  return value.replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function dropUndefined(flags: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
