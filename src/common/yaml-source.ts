import { closest, distance } from 'fastest-levenshtein';
import { isMap, isNode, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';

// Parses YAML (or JSON, which is YAML) and validates it with a zod schema, reporting every problem as
// `file:line: field: message` so an operator can go straight to it; an unknown key (a typo) comes
// with the closest known key of its mapping ("did you mean").

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export function validateYaml<T>(text: string, file: string, schema: z.ZodType<T>): ValidationResult<T> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    return {
      ok: false,
      errors: document.errors.map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`),
    };
  }
  const result = schema.safeParse(document.toJS() ?? {});
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    errors: result.error.issues.flatMap((issue) => {
      const path = [...issue.path];
      if (issue.code === 'unrecognized_keys')
        return issue.keys.map((key) => {
          const line = keyLine(document, lineCounter, path, key) ?? lineOf(document, lineCounter, path);
          const suggestion = suggestKey(key, knownKeys(schema, path));
          return `${file}${line ? `:${line}` : ''}: unknown key ${[...path, key].map(String).join('.')}${suggestion ? ` (did you mean ${suggestion}?)` : ''}`;
        });
      const line = lineOf(document, lineCounter, path);
      const field = path.map(String).join('.') || '(top level)';
      return [`${file}${line ? `:${line}` : ''}: ${field}: ${issue.message}`];
    }),
  };
}

/** The closest known key when it is close enough to be a typo of `key` (a third of its length, at least 2 edits). */
export function suggestKey(key: string, known: string[]): string | undefined {
  if (known.length === 0) return undefined;
  const best = closest(key, known);
  return distance(key.toLowerCase(), best.toLowerCase()) <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** The keys the schema accepts at `path` (objects inside defaults, optionals, arrays and records). */
function knownKeys(schema: z.ZodTypeAny, path: Array<string | number>): string[] {
  let current: z.ZodTypeAny | undefined = schema;
  for (const step of [...path, undefined]) {
    current = unwrap(current);
    if (step === undefined) break;
    if (current instanceof z.ZodObject) current = current.shape[step];
    else if (current instanceof z.ZodArray) current = current.element;
    else if (current instanceof z.ZodRecord) current = current.valueSchema;
    else return [];
  }
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

function unwrap(schema: z.ZodTypeAny | undefined): z.ZodTypeAny | undefined {
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodDefault) current = current._def.innerType;
    else if (current instanceof z.ZodOptional || current instanceof z.ZodNullable) current = current.unwrap();
    else if (current instanceof z.ZodEffects) current = current.innerType();
    else return current;
  }
}

/** The line of `key` itself in the mapping at `path` (its value may start lines later). */
function keyLine(
  document: Document,
  lineCounter: LineCounter,
  path: Array<string | number>,
  key: string,
): number | undefined {
  const map = path.length === 0 ? document.contents : document.getIn(path, true);
  if (!isMap(map)) return undefined;
  const pair = map.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
  const range = isNode(pair?.key) ? pair.key.range : undefined;
  return range ? lineCounter.linePos(range[0]).line : undefined;
}

function lineOf(document: Document, lineCounter: LineCounter, path: Array<string | number>): number | undefined {
  for (let length = path.length; length >= 0; length--) {
    const node = document.getIn(path.slice(0, length), true);
    if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    // For a key that is unknown, getIn on its value still finds it; for a missing key, fall back to the parent.
  }
  return undefined;
}
