import { decodeBytes } from './mime-charset.ts';
import { decodeFlowed, decodeTransfer } from './mime-transfer.ts';

// A lean MIME walker for the structures bounces have (RFC 6522 multipart/report with
// message/delivery-status and message/rfc822 or text/rfc822-headers parts, multipart/mixed and
// /alternative, single text parts). It follows the same reading rules as postal-mime (line-based
// boundaries, innermost boundary first, the first Content-* header wins, digest parts default
// to message/rfc822, text/plain and text/html inline unless attached), but slices part bodies
// out of the raw message and decodes only the parts the caller reads: postal-mime copies every
// part through a Blob, which made it most of the time spent on a bounce.
// What it does not read (RFC 2231 boundary/charset parameters, comments in Content-Type) is
// reported as `unsupported` so the caller can use postal-mime instead.

export interface MimeHeader {
  key: string;
  value: string;
}

export interface MimeLeaf {
  /** Lower-cased media type, e.g. `message/delivery-status`. */
  type: string;
  /** text/plain and text/html parts that are not attachments. */
  inline: boolean;
  /** The closest enclosing multipart/alternative (inline text is taken once per alternative). */
  alternative: object | undefined;
  /** Body bytes after the transfer decoding, as a byte string. */
  bytes(): string;
  /** Body as text, in the part's charset (format=flowed joined). */
  text(): string;
}

export type WalkResult =
  | { kind: 'ok'; headers: MimeHeader[]; leaves: MimeLeaf[] }
  | { kind: 'refused'; error: string }
  | { kind: 'unsupported'; why: string };

export interface WalkLimits {
  maxNestingDepth: number;
  /** Parts across the whole tree: a few lines of `--b` each open one, so this bounds memory. */
  maxParts: number;
  /** Raw body bytes decoded per part: readers keep only the start of a text, so a huge part is cut first. */
  maxBodyBytes: number;
  /**
   * Raw body bytes decoded across the message's parts, in the order their text is asked for: many
   * parts each under maxBodyBytes would otherwise have the whole message decoded.
   */
  maxDecodedBytes: number;
  /** Header bytes across all parts (postal-mime's limit: 2 MiB). */
  maxHeaderBytes: number;
}

interface Part {
  parent: Part | undefined;
  depth: number;
  children: Part[];
  finalizedChildren: number;
  state: 'header' | 'body' | 'finished';
  headerLines: string[];
  headers: MimeHeader[];
  bodyStart: number;
  bodyEnd: number;
  type: string;
  params: Map<string, string>;
  multipart: string | false;
  encoding: string;
  disposition: string;
}

class Unsupported extends Error {}
class Refused extends Error {}

export function walkMime(raw: Uint8Array, limits: WalkLimits): WalkResult {
  const s = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
  try {
    const root = parseTree(s, limits);
    const leaves: MimeLeaf[] = [];
    collectLeaves(s, root, undefined, leaves, limits, { left: limits.maxDecodedBytes });
    return { kind: 'ok', headers: root.headers, leaves };
  } catch (error) {
    if (error instanceof Unsupported) return { kind: 'unsupported', why: error.message };
    if (error instanceof Refused) return { kind: 'refused', error: error.message };
    throw error;
  }
}

function newPart(parent: Part | undefined, limits: WalkLimits, count: number): Part {
  const depth = parent ? parent.depth + 1 : 0;
  if (count > limits.maxParts) throw new Refused(`more than ${limits.maxParts} MIME parts`);
  if (depth > limits.maxNestingDepth)
    throw new Refused(`Maximum MIME nesting depth of ${limits.maxNestingDepth} levels exceeded`);
  // RFC 2046 §5.1.5: the parts of a multipart/digest are messages by default.
  const type = parent?.multipart === 'digest' ? 'message/rfc822' : 'text/plain';
  const part: Part = {
    parent,
    depth,
    children: [],
    finalizedChildren: 0,
    state: 'header',
    headerLines: [],
    headers: [],
    bodyStart: 0,
    bodyEnd: 0,
    type,
    params: new Map(),
    multipart: false,
    encoding: '',
    disposition: '',
  };
  parent?.children.push(part);
  return part;
}

type Boundaries = { marker: string; part: Part }[];

// Plain functions rather than closures: tsx names every closure it creates, on every call.
function processHeaders(part: Part, boundaries: Boundaries): void {
  applyHeaders(part);
  const boundary = part.multipart ? part.params.get('boundary') : undefined;
  if (boundary && part.state === 'body')
    boundaries.push({ marker: `--${Buffer.from(boundary, 'utf8').toString('latin1')}`, part });
}

function finalize(part: Part, at: number, boundaries: Boundaries): void {
  if (part.state === 'finished') return;
  if (part.state === 'header') {
    processHeaders(part, boundaries);
    part.bodyStart = part.bodyEnd = at;
  }
  const index = boundaries.findIndex((b) => b.part === part);
  if (index >= 0) boundaries.splice(index, 1);
  finalizeChildren(part, at, boundaries);
  part.state = 'finished';
}

function finalizeChildren(part: Part, at: number, boundaries: Boundaries): void {
  while (part.finalizedChildren < part.children.length)
    finalize(part.children[part.finalizedChildren++]!, at, boundaries);
}

function parseTree(s: string, limits: WalkLimits): Part {
  let partCount = 1;
  const root = newPart(undefined, limits, partCount);
  const boundaries: Boundaries = [];
  let current = root;
  let headerBytes = 0;

  let pos = 0;
  const length = s.length;
  while (pos < length) {
    const newline = s.indexOf('\n', pos);
    const next = newline < 0 ? length : newline + 1;
    let end = newline < 0 ? length : newline;
    while (end > pos && s.charCodeAt(end - 1) === 13) end--;
    if (boundaries.length > 0 && end - pos > 2 && s.charCodeAt(pos) === 45 && s.charCodeAt(pos + 1) === 45) {
      const hit = matchBoundary(s, pos, end, boundaries);
      if (hit) {
        if (current.state === 'body') current.bodyEnd = pos;
        if (hit.terminator) {
          finalize(hit.part, pos, boundaries);
          current = hit.part.parent ?? root;
        } else {
          finalizeChildren(hit.part, pos, boundaries);
          current = newPart(hit.part, limits, ++partCount);
        }
        pos = next;
        continue;
      }
    }
    if (current.state === 'header') {
      if (end === pos) {
        current.state = 'body';
        current.bodyStart = next;
        processHeaders(current, boundaries);
      } else {
        headerBytes += end - pos;
        if (headerBytes > limits.maxHeaderBytes)
          throw new Refused(`Maximum header size of ${limits.maxHeaderBytes} bytes exceeded`);
        current.headerLines.push(s.slice(pos, end));
      }
    }
    pos = next;
  }
  if (current.state === 'body') current.bodyEnd = length;
  finalize(root, length, boundaries);
  return root;
}

function matchBoundary(
  s: string,
  pos: number,
  end: number,
  boundaries: Boundaries,
): { part: Part; terminator: boolean } | undefined {
  for (let i = boundaries.length - 1; i >= 0; i--) {
    const { marker, part } = boundaries[i]!;
    if (end - pos < marker.length || !s.startsWith(marker, pos)) continue;
    let at = pos + marker.length;
    const terminator = end - at >= 2 && s.charCodeAt(at) === 45 && s.charCodeAt(at + 1) === 45;
    if (terminator) at += 2;
    // RFC 2046 §5.1.1: a boundary line may end with white space.
    while (at < end && (s.charCodeAt(at) === 32 || s.charCodeAt(at) === 9)) at++;
    if (at === end) return { part, terminator };
  }
  return undefined;
}

const CONTENT_HEADERS = new Set(['content-type', 'content-transfer-encoding', 'content-disposition']);

function applyHeaders(part: Part): void {
  const folded: string[] = [];
  for (const line of part.headerLines) {
    // RFC 5322 §2.2.3: only SP and HTAB continue a field.
    const first = line.charCodeAt(0);
    if (folded.length > 0 && (first === 32 || first === 9)) folded[folded.length - 1] += line;
    else folded.push(line);
  }
  const seen = new Set<string>();
  // eslint-disable-next-line no-control-regex
  const ascii = !/[^\x00-\x7f]/.test(part.headerLines.join(''));
  for (const raw of folded) {
    // Header bytes are read as UTF-8 (RFC 6532).
    const line = ascii ? raw : Buffer.from(raw, 'latin1').toString('utf8');
    const colon = line.indexOf(':');
    const key = trimWsp(colon < 0 ? line : line.slice(0, colon)).toLowerCase();
    const rest = colon < 0 ? '' : line.slice(colon + 1);
    const value = trimWsp(rest.includes('\r') ? rest.replace(/\r+/g, ' ') : rest);
    part.headers.push({ key, value });
    // The first of duplicated Content-* headers wins, as in postal-mime.
    if (!CONTENT_HEADERS.has(key) || seen.has(key)) continue;
    seen.add(key);
    if (key === 'content-type') parseContentType(part, value);
    else if (key === 'content-transfer-encoding') part.encoding = /[\w-]+/.exec(value.toLowerCase())?.[0] ?? '';
    else part.disposition = /^[^;]*/.exec(value)![0].trim().toLowerCase();
  }
  part.headerLines = [];
}

function trimWsp(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

function parseContentType(part: Part, value: string): void {
  const pieces: string[] = [];
  let piece = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted && c === '\\' && i + 1 < value.length) {
      piece += value[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === '(') throw new Unsupported('comment in Content-Type');
    else if (!quoted && c === ';') {
      pieces.push(piece);
      piece = '';
      continue;
    }
    piece += c;
  }
  pieces.push(piece);
  const type = pieces[0]!.replace(/"/g, '').trim().toLowerCase();
  // As in postal-mime, an empty Content-Type makes a part of no type (neither inline text nor a report).
  part.type = type;
  for (const param of pieces.slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    const name = param.slice(0, eq).trim().toLowerCase();
    // RFC 2231 continuations and charsets are left to postal-mime for the parameters we read.
    if (/^(?:boundary|charset|format|delsp)\*/.test(name)) throw new Unsupported(`RFC 2231 parameter ${name}`);
    let paramValue = param.slice(eq + 1).trim();
    if (paramValue.startsWith('"'))
      paramValue = paramValue.slice(1, paramValue.indexOf('"', 1) < 0 ? undefined : paramValue.indexOf('"', 1));
    if (!part.params.has(name)) part.params.set(name, paramValue);
  }
  part.multipart = part.type.startsWith('multipart/') ? part.type.slice('multipart/'.length) : false;
}

/** What is left of the message's maxDecodedBytes, shared by its leaves. */
interface DecodeBudget {
  left: number;
}

function collectLeaves(
  s: string,
  part: Part,
  alternative: object | undefined,
  out: MimeLeaf[],
  limits: WalkLimits,
  budget: DecodeBudget,
): void {
  if (!part.multipart) {
    out.push(leafOf(s, part, alternative, limits.maxBodyBytes, budget));
    return;
  }
  const within = part.multipart === 'alternative' ? part : alternative;
  for (const child of part.children) collectLeaves(s, child, within, out, limits, budget);
}

function leafOf(
  s: string,
  part: Part,
  alternative: object | undefined,
  maxBodyBytes: number,
  budget: DecodeBudget,
): MimeLeaf {
  return new Leaf(s, part, alternative, Math.min(part.bodyEnd, part.bodyStart + maxBodyBytes), budget);
}

class Leaf implements MimeLeaf {
  readonly type: string;
  readonly inline: boolean;
  private decoded: string | undefined;

  constructor(
    private readonly s: string,
    private readonly part: Part,
    readonly alternative: object | undefined,
    private readonly end: number,
    private readonly budget: DecodeBudget,
  ) {
    this.type = part.type;
    this.inline = part.disposition !== 'attachment' && (part.type === 'text/plain' || part.type === 'text/html');
  }

  bytes(): string {
    if (this.decoded === undefined) {
      const start = this.part.bodyStart;
      const end = Math.max(start, Math.min(this.end, start + this.budget.left));
      this.budget.left -= end - start;
      this.decoded = decodeTransfer(this.s.slice(start, end), this.part.encoding);
    }
    return this.decoded;
  }

  text(): string {
    const { params } = this.part;
    const text = decodeBytes(this.bytes(), params.get('charset'));
    return /^flowed$/i.test(params.get('format') ?? '')
      ? decodeFlowed(text, /^yes$/i.test(params.get('delsp') ?? ''))
      : text;
  }
}
