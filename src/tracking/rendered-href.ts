import { decodeHTMLAttribute } from 'entities';

// What a link whose URL comes (even in part) from recipient data may become in a message. The data
// is not the operator's: `javascript:`, `data:`, `vbscript:` or any other scheme a mail client or a
// browser would act on must not reach the reader as a link. The value is read as a browser reads it —
// HTML entities decoded (entities, the HTML spec's table), then the WHATWG URL parser, which drops
// leading C0 controls and spaces, tabs and newlines anywhere, and lower-cases the scheme — so no
// obfuscation of the scheme survives. Pure: no I/O.

/** What the decorator does with one rendered href. */
export type HrefVerdict =
  /** http(s): rewritten to a tracked redirect to `target`. */
  | { kind: 'track'; target: string }
  /** mailto: left as it is, clickable, not tracked (the tracking server cannot redirect to it). */
  | { kind: 'keep' }
  /** Anything else (another scheme, a relative or broken URL, a value breaking out of its attribute): no link. */
  | { kind: 'refuse'; reason: string };

/** The quote around the attribute value in the template: `"`, `'`, or '' when unquoted. */
export type AttributeQuote = '"' | "'" | '';

const maxUrlLength = 8_192;

export function decodeAttribute(value: string): string {
  return value.includes('&') ? decodeHTMLAttribute(value) : value;
}

/**
 * The verdict on a rendered href value (still HTML-escaped, as it stands in the document), written
 * between `quote`s in the template. `keptAsIs`: the value stays in the document even when it is
 * http(s) (an opted-out link), so one closing its attribute is refused; a tracked link's value is
 * replaced by the redirect URL, and whatever it held goes with it.
 */
export function classifyRenderedHref(rendered: string, quote: AttributeQuote, keptAsIs = false): HrefVerdict {
  // `| raw` output closing the attribute: the rest would be read as more attributes (onclick=…).
  const closes = quote === '' ? /[\s>]/.test(rendered) : rendered.includes(quote);
  const target = redirectTarget(rendered);
  if (target !== undefined && !(keptAsIs && closes)) return { kind: 'track', target };
  if (closes) return { kind: 'refuse', reason: 'the value closes its attribute' };
  let url: URL;
  try {
    url = new URL(decodeAttribute(rendered));
  } catch {
    return { kind: 'refuse', reason: 'not an absolute URL' };
  }
  if (url.protocol === 'mailto:') return { kind: 'keep' };
  if (url.protocol === 'http:' || url.protocol === 'https:')
    return { kind: 'refuse', reason: 'an http(s) URL with control characters or over 8,192 characters' };
  return { kind: 'refuse', reason: `scheme ${url.protocol} (only http, https and mailto links are kept)` };
}

/** Turns a rendered href into the URL a redirect may send to: http(s) only, no control characters. */
export function redirectTarget(renderedValue: string): string | undefined {
  const decoded = decodeAttribute(renderedValue).trim();
  if (decoded.length === 0 || decoded.length > maxUrlLength) return undefined;
  // CR/LF or other controls would let personalization data inject headers; refuse rather than repair.
  if (/[\u0000-\u001f\u007f]/.test(decoded)) return undefined;
  if (!/^https?:\/\//i.test(decoded)) return undefined;
  let url: URL;
  try {
    url = new URL(decoded);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  return url.href;
}

/**
 * Whether recipient data can choose the scheme of an href template: a Liquid output or tag comes
 * before the first character that cannot be part of a scheme (`{{ website }}`, `j{{ rest }}`), as the
 * URL parser would read the rendered value. `mailto:{{ email }}`, `#{{ anchor }}` or `/p/{{ id }}`
 * keep the template's own scheme (or none).
 */
export function dataChoosesScheme(hrefTemplate: string): boolean {
  const value = decodeAttribute(hrefTemplate)
    .replace(/^[\u0000-\u0020]+/, '')
    .replace(/[\t\n\r]/g, '');
  for (let i = 0; i < value.length; i++) {
    if (value.startsWith('{{', i) || value.startsWith('{%', i)) return true;
    if (!/[A-Za-z0-9+.-]/.test(value[i]!)) return false;
  }
  return false;
}
