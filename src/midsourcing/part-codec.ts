import { promisify } from 'node:util';
import { constants, gunzip, gzip } from 'node:zlib';
import { createAddressValidator } from '../audience/address.ts';
import { sha256Hex } from './signing.ts';
import type { PartLine } from './wire.ts';

// A delivery part on the wire: NDJSON (one PartLine per line), gzip-compressed. Its idempotency key
// is `<part number>:<sha256 of the NDJSON>`, so a retried part is recognised whatever its gzip bytes.

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export interface EncodedPart {
  body: Buffer;
  key: string;
  rawBytes: number;
}

export async function encodePart(part: number, lines: readonly PartLine[]): Promise<EncodedPart> {
  let ndjson = '';
  for (const line of lines)
    ndjson += `${JSON.stringify({ id: line.id, email: line.email, domain: line.domain, data: line.data })}\n`;
  const raw = Buffer.from(ndjson, 'utf8');
  // Level 1: parts are built on the hot path of a push; emails and JSON still shrink 3-5×.
  const body = await gzipAsync(raw, { level: constants.Z_BEST_SPEED });
  return { body, key: `${part}:${sha256Hex(raw)}`, rawBytes: raw.length };
}

export type DecodeResult =
  | { ok: true; lines: PartLine[]; key: string }
  | { ok: false; code: 'INVALID_BODY' | 'BODY_TOO_LARGE'; message: string };

export async function decodePart(
  part: number,
  body: Buffer,
  gzipped: boolean,
  maxBytes: number,
): Promise<DecodeResult> {
  let raw: Buffer;
  if (gzipped) {
    try {
      raw = await gunzipAsync(body, { maxOutputLength: maxBytes });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE')
        return {
          ok: false,
          code: 'BODY_TOO_LARGE',
          message: `part ${part} decompresses to more than ${maxBytes} bytes`,
        };
      return {
        ok: false,
        code: 'INVALID_BODY',
        message: `part ${part}: body is not valid gzip (${(error as Error).message})`,
      };
    }
  } else raw = body;
  if (raw.length > maxBytes)
    return { ok: false, code: 'BODY_TOO_LARGE', message: `part ${part} is larger than ${maxBytes} bytes` };
  const text = raw.toString('utf8');
  const lines: PartLine[] = [];
  let start = 0;
  let lineNumber = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    lineNumber++;
    if (end > start) {
      const checked = checkLine(text.slice(start, end));
      if (typeof checked === 'string')
        return { ok: false, code: 'INVALID_BODY', message: `part ${part}, line ${lineNumber}: ${checked}` };
      lines.push(checked);
    }
    start = end + 1;
  }
  return { ok: true, lines, key: `${part}:${sha256Hex(raw)}` };
}

// Domain checks memoized (bounded): a part has few distinct domains.
const validateAddress = createAddressValidator();

/** Personalization data of one recipient, as JSON text, at most. */
const maxDataChars = 64 * 1024;

// Hand-written rather than a schema library: a million lines per delivery go through here. Every
// line is checked as the marketing side's import would (address syntax, the domain the MTA routes
// on is the address's own, data a JSON object): one bad line refuses the whole part.
function checkLine(text: string): PartLine | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const { id, email, domain, data } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(id) || (id as number) <= 0) return '"id" must be a positive integer';
  if (Object.keys(value as object).length !== 4) return 'unexpected field (allowed: id, email, domain, data)';
  if (typeof email !== 'string') return '"email" must be an address';
  const address = validateAddress(email);
  if (!address.ok) return `"email" ${JSON.stringify(email.slice(0, 100))} is not a valid address (${address.message})`;
  if (typeof domain !== 'string' || domain !== address.domain)
    return `"domain" must be the address's domain "${address.domain}" (got ${JSON.stringify(String(domain).slice(0, 100))})`;
  if (typeof data !== 'string' || data.length > maxDataChars)
    return `"data" must be JSON text of at most ${maxDataChars} characters`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return '"data" is not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return '"data" must be a JSON object';
  return { id: id as number, email, domain, data };
}
