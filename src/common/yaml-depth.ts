import { LineCounter, Parser } from 'yaml';

// Nesting depth, measured before a document is composed. The yaml package composes nested
// collections recursively: a pack of 2,000 "[" overflows the stack, and after two or three such
// documents in one process V8 aborted it ("RegExpCompiler Allocation failed - process out of
// memory", not catchable) — a deliverability source could end Herald with a few nested brackets.
// The yaml Parser builds its concrete syntax tree with an explicit stack, so it is walked here
// iteratively, and a document nested deeper than any config or rule pack needs is refused.

/** Deeper than any herald.yaml or rule pack (they nest four or five levels). */
export const maxYamlDepth = 64;

export const tooDeepMessage = `collections nested more than ${maxYamlDepth} levels deep: no Herald file needs that`;

const collections = new Set(['block-map', 'block-seq', 'flow-collection', 'document']);

/** The line where nesting first passes maxYamlDepth, or undefined when it never does. */
export function tooDeepLine(text: string): number | undefined {
  const lineCounter = new LineCounter();
  const parser = new Parser(lineCounter.addNewLine);
  for (const token of parser.parse(text)) {
    const stack: Array<{ node: unknown; depth: number }> = [{ node: token, depth: 0 }];
    while (stack.length > 0) {
      const { node, depth } = stack.pop()!;
      if (typeof node !== 'object' || node === null) continue;
      const record = node as { type?: string; offset?: number };
      const inside = depth + (record.type !== undefined && collections.has(record.type) ? 1 : 0);
      if (inside > maxYamlDepth + 1) return lineCounter.linePos(record.offset ?? 0).line;
      for (const value of Object.values(node))
        if (Array.isArray(value)) for (const item of value) stack.push({ node: item, depth: inside });
        else if (typeof value === 'object' && value !== null) stack.push({ node: value, depth: inside });
    }
  }
  return undefined;
}
