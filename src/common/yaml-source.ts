import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';

// Parses YAML (or JSON, which is YAML) and validates it with a zod schema, reporting every problem as
// `file:line: field: message` so an operator can go straight to it.

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export function validateYaml<T>(text: string, file: string, schema: z.ZodType<T>): ValidationResult<T> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    return { ok: false, errors: document.errors.map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`) };
  }
  const result = schema.safeParse(document.toJS() ?? {});
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    errors: result.error.issues.map((issue) => {
      const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
      const path = [...issue.path];
      const where = keys.length ? [...path, keys[0]!] : path;
      const line = lineOf(document, lineCounter, where);
      const field = path.map(String).join('.') || '(top level)';
      const message = keys.length ? `unknown key ${keys.join(', ')}` : issue.message;
      return `${file}${line ? `:${line}` : ''}: ${field}: ${message}`;
    }),
  };
}

function lineOf(document: Document, lineCounter: LineCounter, path: Array<string | number>): number | undefined {
  for (let length = path.length; length >= 0; length--) {
    const node = document.getIn(path.slice(0, length), true);
    if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    // For a key that is unknown, getIn on its value still finds it; for a missing key, fall back to the parent.
  }
  return undefined;
}
