// Link extraction from a delivery's HTML *template* (before Liquid), shared by preparation (which
// stores the links) and the MTA decorator and the redirect (which rely on the same indexes).
//
// Tracked links are wrapped in marker characters from the Unicode private-use area, so that after
// Liquid renders the template the decorator finds each link — with its index, even when a loop or a
// condition repeats or removes it — by indexOf, without parsing the rendered HTML again.
// Pure: no I/O.

import { decodeHTML } from 'entities';
import { dataChoosesScheme, decodeAttribute, type AttributeQuote } from './rendered-href.ts';

export const linkStart = '\uE000';
export const linkMiddle = '\uE001';
export const linkEnd = '\uE002';
export const pixelMarker = '\uE003';
const markerPattern = /[\uE000-\uE003]/g;

export interface ExtractedLink {
  index: number;
  /** The href value as written (Liquid allowed, entities not decoded). */
  urlTemplate: string;
  label: string;
}

/** How a tracked link's href is written in the template, so a refused value can be removed with its attribute. */
export interface HrefAttribute {
  /** The literal text from the attribute name to the value (`href="`), right before the link's start marker. */
  before: string;
  quote: AttributeQuote;
}

/**
 * An href left untracked by the operator (`data-herald-track="off"`) whose scheme recipient data
 * chooses: marked too (index `g0`, `g1`…), so a javascript: value is removed like a tracked link's.
 */
export interface GuardedHref extends HrefAttribute {
  urlTemplate: string;
}

export interface HtmlAnalysis {
  links: ExtractedLink[];
  /** Per link index. */
  hrefs: HrefAttribute[];
  /** Per guard index. */
  guarded: GuardedHref[];
  /** The template with markers around tracked hrefs and before </body>; compile this instead of the original. */
  markedTemplate: string;
}

const maxLabelLength = 120;

export function analyzeHtmlTemplate(source: string): HtmlAnalysis {
  const html = source.replace(markerPattern, '');
  const links: ExtractedLink[] = [];
  const hrefs: HrefAttribute[] = [];
  const guarded: GuardedHref[] = [];
  const pieces: string[] = [];
  let copiedUpTo = 0;
  const lower = html.toLowerCase();
  let at = 0;
  for (;;) {
    const open = lower.indexOf('<a', at);
    if (open < 0) break;
    const after = lower.charCodeAt(open + 2);
    const isArea = lower.startsWith('<area', open) && isSpace(lower.charCodeAt(open + 5));
    if (!isSpace(after) && !isArea) {
      at = open + 2;
      continue;
    }
    const tag = scanTag(html, open + (isArea ? 5 : 2));
    at = tag.end;
    const href = tag.attributes.get('href');
    if (!href) continue;
    const attribute = { before: html.slice(href.nameStart, href.start), quote: href.quote };
    const optedOut = tag.attributes.get('data-herald-track')?.value.trim().toLowerCase() === 'off';
    if (optedOut || !isTrackable(href.value)) {
      if (!optedOut || !dataChoosesScheme(href.value.trim()) || isMirrorLink(href.value)) continue;
      const mark = `g${guarded.length}`;
      guarded.push({ urlTemplate: href.value, ...attribute });
      pieces.push(html.slice(copiedUpTo, href.start), linkStart, mark, linkMiddle, href.value, linkEnd);
      copiedUpTo = href.end;
      continue;
    }
    const index = links.length;
    links.push({
      index,
      urlTemplate: href.value,
      label: isArea ? (tag.attributes.get('alt')?.value ?? '') : labelAfter(html, lower, tag.end),
    });
    hrefs.push(attribute);
    pieces.push(html.slice(copiedUpTo, href.start), linkStart, String(index), linkMiddle, href.value, linkEnd);
    copiedUpTo = href.end;
  }
  pieces.push(html.slice(copiedUpTo));
  let markedTemplate = pieces.join('');
  const bodyEnd = markedTemplate.toLowerCase().lastIndexOf('</body');
  if (bodyEnd >= 0) markedTemplate = markedTemplate.slice(0, bodyEnd) + pixelMarker + markedTemplate.slice(bodyEnd);
  return { links, hrefs, guarded, markedTemplate };
}

function isTrackable(value: string): boolean {
  const trimmed = value.trim();
  // The mirror page has its own counter (mirror views); tracking its link would count it twice.
  if (isMirrorLink(trimmed)) return false;
  if (/^https?:\/\//i.test(decodeAttribute(trimmed))) return true;
  // Recipient data may choose the scheme (`{{ website }}`): decided per message after rendering
  // (rendered-href.ts) — tracked when http(s), kept when mailto, otherwise no link at all.
  return dataChoosesScheme(trimmed);
}

function isMirrorLink(value: string): boolean {
  return /^\{\{\s*mirror_url\s*\}\}$/.test(value.trim());
}

interface Attribute {
  value: string;
  nameStart: number;
  start: number;
  end: number;
  quote: AttributeQuote;
}

/** Reads attributes from `from` to the closing '>', stepping over quoted values and Liquid blocks. */
function scanTag(html: string, from: number): { attributes: Map<string, Attribute>; end: number } {
  const attributes = new Map<string, Attribute>();
  let i = from;
  while (i < html.length) {
    while (i < html.length && isSpace(html.charCodeAt(i))) i++;
    const c = html[i];
    if (c === undefined || c === '>') return { attributes, end: i + 1 };
    if (c === '/') {
      i++;
      continue;
    }
    if (html.startsWith('{{', i) || html.startsWith('{%', i)) {
      i = skipLiquid(html, i);
      continue;
    }
    const nameStart = i;
    while (i < html.length && !/[\s=>/]/.test(html[i]!)) i++;
    const name = html.slice(nameStart, i).toLowerCase();
    while (i < html.length && isSpace(html.charCodeAt(i))) i++;
    if (html[i] !== '=') continue;
    i++;
    while (i < html.length && isSpace(html.charCodeAt(i))) i++;
    const quote: AttributeQuote = html[i] === '"' ? '"' : html[i] === "'" ? "'" : '';
    const start = quote ? i + 1 : i;
    i = start;
    while (i < html.length) {
      if (html.startsWith('{{', i) || html.startsWith('{%', i)) {
        i = skipLiquid(html, i);
        continue;
      }
      const ch = html[i]!;
      if (quote ? ch === quote : isSpace(ch.charCodeAt(0)) || ch === '>') break;
      i++;
    }
    if (name && !attributes.has(name))
      attributes.set(name, { value: html.slice(start, i), nameStart, start, end: i, quote });
    if (quote && html[i] === quote) i++;
  }
  return { attributes, end: i };
}

function skipLiquid(html: string, at: number): number {
  const close = html.indexOf(html[at + 1] === '{' ? '}}' : '%}', at + 2);
  return close < 0 ? html.length : close + 2;
}

function labelAfter(html: string, lower: string, from: number): string {
  const close = lower.indexOf('</a', from);
  const inner = html.slice(from, close < 0 ? Math.min(html.length, from + 500) : close);
  const text = decodeHTML(inner.replace(/\{%[\s\S]*?%\}/g, ' ').replace(/<[^>]*>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > maxLabelLength ? `${text.slice(0, maxLabelLength - 1)}…` : text;
}

function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 10 || code === 13 || code === 12;
}

export interface RenderedLink {
  index: number;
  occurrence: number;
  /** The href as rendered, still HTML-escaped. */
  value: string;
  /** Offsets in the rendered HTML of the whole marked span (markers included). */
  start: number;
  end: number;
}

export interface RenderedHref extends RenderedLink {
  /** An opted-out link's href (GuardedHref, `index` into HtmlAnalysis.guarded), not a tracked link. */
  guarded: boolean;
}

/** Every marked link of a rendered document, in order; occurrences count repeats of one index. */
export function findRenderedLinks(rendered: string): RenderedLink[] {
  return findRenderedHrefs(rendered).filter((href) => !href.guarded);
}

/** Every marked href, tracked links and guarded ones, in document order. */
export function findRenderedHrefs(rendered: string): RenderedHref[] {
  const found: RenderedHref[] = [];
  const seen = new Map<string, number>();
  let at = rendered.indexOf(linkStart);
  while (at >= 0) {
    const middle = rendered.indexOf(linkMiddle, at + 1);
    const end = middle < 0 ? -1 : rendered.indexOf(linkEnd, middle + 1);
    if (end < 0) break;
    const mark = rendered.slice(at + 1, middle);
    const guarded = mark.startsWith('g');
    const index = Number(guarded ? mark.slice(1) : mark);
    if (mark.length > (guarded ? 1 : 0) && Number.isSafeInteger(index) && index >= 0) {
      const occurrence = seen.get(mark) ?? 0;
      seen.set(mark, occurrence + 1);
      found.push({ index, occurrence, guarded, value: rendered.slice(middle + 1, end), start: at, end: end + 1 });
    }
    at = rendered.indexOf(linkStart, end + 1);
  }
  return found;
}

export function stripMarkers(text: string): string {
  return text.replace(markerPattern, '');
}

// The markers as they may appear in JSON text: raw, or as \uE000-\uE003 escapes.
const markerInJson = /[\uE000-\uE003]|\\u[eE]00[0-3]/;

/**
 * Parses a recipient's personalization data (JSON text) with every marker character removed from
 * its strings, keys included: data can never open, close or redirect a tracked link (only the
 * template's own links carry markers). Data without any marker is parsed as is.
 */
export function parseDataWithoutMarkers(dataJson: string): unknown {
  if (!markerInJson.test(dataJson)) return JSON.parse(dataJson);
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string') return stripMarkers(value);
    if (Array.isArray(value)) return value.map(clean);
    if (value !== null && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([key, inner]) => [stripMarkers(key), clean(inner)]));
    return value;
  };
  return clean(JSON.parse(dataJson));
}
