// A fast path for the templates most deliveries use: text with `{{ name }}`, `{{ name | default: "x" }}`,
// `{{ name | downcase }}` or `{{ name | upcase }}` and nothing else. Rendering one is a few string joins
// instead of LiquidJS's generic evaluator (about ten times faster, which matters at thousands of messages
// per second). Anything else — tags, other filters, dotted paths, whitespace control — is left to LiquidJS,
// and so is any recipient whose value is missing or not a plain string or number: the fast path then
// answers `undefined` and the caller renders with LiquidJS, which gives the exact output or error.

type Part = string | { name: string; filter: 'none' | 'default' | 'downcase' | 'upcase'; fallback: string };

export type FastTemplate = (data: Record<string, unknown>) => string | undefined;

const outputPattern = /\{\{([\s\S]*?)\}\}/g;
const expressionPattern =
  /^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(?:\|\s*(default|downcase|upcase)\s*(?::\s*(?:"([^"]*)"|'([^']*)'))?\s*)?$/;

// What LiquidJS's escape filter changes. An HTML template escapes its outputs (outputEscape): the
// fast path takes only values escaping would leave as they are and hands the rest to LiquidJS, so
// the escaping itself is always LiquidJS's.
const htmlSpecial = /[&<>"']/;

/** The fast renderer of `source`, or null when the template needs LiquidJS. */
export function compileFastTemplate(source: string, options: { html?: boolean } = {}): FastTemplate | null {
  if (source.includes('{%')) return null;
  const html = options.html === true;
  const parts: Part[] = [];
  let last = 0;
  for (const match of source.matchAll(outputPattern)) {
    const inner = match[1]!;
    if (inner.startsWith('-') || inner.endsWith('-')) return null;
    const expression = expressionPattern.exec(inner);
    if (!expression) return null;
    const filter = (expression[2] ?? 'none') as 'none' | 'default' | 'downcase' | 'upcase';
    const fallback = expression[3] ?? expression[4];
    // `default` needs its argument; the other filters take none.
    if ((filter === 'default') !== (fallback !== undefined)) return null;
    if (html && fallback !== undefined && htmlSpecial.test(fallback)) return null;
    if (match.index > last) parts.push(source.slice(last, match.index));
    parts.push({ name: expression[1]!, filter, fallback: fallback ?? '' });
    last = match.index + match[0].length;
  }
  if (source.indexOf('{{', last) >= 0 || source.indexOf('}}', last) >= 0) return null;
  if (last < source.length) parts.push(source.slice(last));
  return (data) => {
    let out = '';
    for (const part of parts) {
      if (typeof part === 'string') {
        out += part;
        continue;
      }
      const value = Object.hasOwn(data, part.name) ? data[part.name] : undefined;
      let text: string;
      if (typeof value === 'string') text = value;
      else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
      else if (value === undefined && part.filter === 'default') text = '';
      else return undefined;
      if (html && htmlSpecial.test(text)) return undefined;
      if (part.filter === 'default') out += text.length > 0 ? text : part.fallback;
      else if (part.filter === 'downcase') out += text.toLowerCase();
      else if (part.filter === 'upcase') out += text.toUpperCase();
      else out += text;
    }
    return out;
  };
}
