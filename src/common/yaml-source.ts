import { closest, distance } from 'fastest-levenshtein';
import { isMap, isNode, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { z } from 'zod';
import { tooDeepLine, tooDeepMessage } from './yaml-depth.ts';

// Parses YAML (or JSON, which is YAML) and validates it with a zod schema, reporting every problem as
// `file:line: field: message` so an operator can go straight to it; an unknown key (a typo) comes
// with the closest known key of its mapping ("did you mean").

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export function validateYaml<T>(text: string, file: string, schema: z.ZodType<T>): ValidationResult<T> {
  const deep = tooDeepLine(text);
  if (deep !== undefined) return { ok: false, errors: [`${file}:${deep}: ${tooDeepMessage}`] };
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    return {
      ok: false,
      errors: document.errors.map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`),
    };
  }
  const js = documentToJs(document, lineCounter);
  if (!js.ok) return { ok: false, errors: [`${file}:${js.line}: ${js.message}`] };
  const result = schema.safeParse(js.value ?? {});
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

/** Aliases of a document may expand to at most this many nodes (the yaml package's default, made explicit). */
export const maxAliasCount = 100;

/**
 * document.toJS(), with aliases bounded: nested aliases ("billion laughs") expand exponentially,
 * and the yaml package refuses them by throwing a ReferenceError that names neither file nor line.
 */
export function documentToJs(
  document: Document,
  lineCounter: LineCounter,
): { ok: true; value: unknown } | { ok: false; line: number; message: string } {
  try {
    return { ok: true, value: document.toJS({ maxAliasCount }) };
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error;
    let line = 1;
    visit(document, {
      Alias(_, node) {
        if (node.range) line = lineCounter.linePos(node.range[0]).line;
        return visit.BREAK;
      },
    });
    const excessive = /excessive alias count/i.test(error.message);
    return {
      ok: false,
      line,
      message: excessive
        ? `YAML aliases (*name, the first here) expand to more than ${maxAliasCount} nodes (a "billion laughs" document): write the values out`
        : `YAML alias: ${error.message}`,
    };
  }
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
