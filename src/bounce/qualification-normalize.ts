import { createHash } from 'node:crypto';

// Replies no rule matched are grouped by shape: the same refusal sent to a thousand recipients,
// with a thousand queue ids and timestamps, is one entry of the qualification table. Variable
// parts become placeholders; what remains is what a rule can match on.

const MAX_PATTERN = 500;

// Order matters: addresses before hosts, dates and times before plain numbers.
const REPLACEMENTS: Array<[RegExp, string]> = [
  [/<?[^\s<>@"]+@[^\s<>@"]+\.[^\s<>@".,;:)]+>?/g, '<address>'],
  [/\bhttps?:\/\/\S+/gi, '<url>'],
  // RFC 5322 and ISO 8601 dates, clock times.
  [/\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+\d{1,2}\s+[a-z]{3,9}\s+\d{2,4}\b/gi, '<date>'],
  [/\b\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?\b/gi, '<date>'],
  [/\b\d{1,2}:\d{2}(?::\d{2})?(?:\s*[+-]\d{4})?\b/g, '<time>'],
  [/\b(?:\d{1,3}\.){3}\d{1,3}\b/g, '<ip>'],
  [/\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}\b/gi, '<ip>'],
  // Queue ids, hashes, base64-ish tokens: long runs mixing letters and digits.
  [/\b(?=[a-z0-9_+/=-]*\d)(?=[a-z0-9_+/=-]*[a-z])[a-z0-9_+/=-]{8,}\b/gi, '<id>'],
  [/\b\d+(?:\.\d+)?\b/g, '<n>'],
];

/** The shape of a reply: lower-case, whitespace collapsed, variable parts replaced by placeholders. */
export function normalizeReplyText(text: string): string {
  let out = text.slice(0, 4_000).replace(/\s+/g, ' ').trim();
  for (const [pattern, placeholder] of REPLACEMENTS) out = out.replace(pattern, placeholder);
  return out.toLowerCase().slice(0, MAX_PATTERN);
}

export interface ReplyShape {
  signature: string;
  pattern: string;
  code: number | null;
  enhancedStatus: string | null;
}

export function replyShape(code: number | null, enhancedStatus: string | null, text: string): ReplyShape {
  const pattern = normalizeReplyText(text);
  const signature = createHash('sha256')
    .update(`${code ?? ''}|${enhancedStatus ?? ''}|${pattern}`)
    .digest('hex')
    .slice(0, 32);
  return { signature, pattern, code, enhancedStatus };
}

/**
 * A regular expression (for a rule's `text`) matching every reply of this shape: the literal parts
 * escaped, each placeholder a bounded wildcard.
 */
export function patternToRegex(pattern: string): string {
  const parts = pattern.split(/<(?:address|url|date|time|ip|id|n)>/);
  return parts
    .map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.{1,100}?')
    .replace(/(?:\.\{1,100\}\?)+/g, '.{1,100}?');
}
