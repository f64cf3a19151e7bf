import { Liquid } from 'liquidjs';
import { describe, expect, it } from 'vitest';
import { compileFastTemplate } from './fast-template.ts';

// The fast path must give exactly LiquidJS's output (same engine options as content.ts), or step aside.
const liquid = new Liquid({ strictFilters: true, strictVariables: true, lenientIf: true, ownPropertyOnly: true });

function liquidRender(source: string, data: Record<string, unknown>): { ok: true; text: string } | { ok: false } {
  try {
    return { ok: true, text: liquid.parseAndRenderSync(source, data) as string };
  } catch {
    return { ok: false };
  }
}

describe('fast templates', () => {
  it.each([
    '{% if a %}x{% endif %}',
    '{{ a.b }}',
    '{{- a }}',
    '{{ a | capitalize }}',
    '{{ a | default }}',
    '{{ a | downcase: "x" }}',
    '{{ a | default: "x" | upcase }}',
    'unbalanced {{ a',
    'stray }} b',
  ])('leaves %s to LiquidJS', (source) => {
    expect(compileFastTemplate(source)).toBeNull();
  });

  const templates = [
    'Hello {{ first_name }}',
    'Hi {{ first_name | default: "there" }}, {{ city | downcase }} / {{ city | upcase }}',
    "{{first_name|default:'friend'}}!",
    '<p>{{ points }} points</p>\n{{ offer-code }}',
    'no variables at all',
    '',
  ];
  const values: unknown[] = ['Ann', '', 'ÉLODIE', 'Mañana', 0, 42, 3.5, null, true, ['x'], { a: 1 }, undefined];
  const keys = ['first_name', 'city', 'points', 'offer-code'];

  it('agrees with LiquidJS on every combination of present, empty, missing and odd values', () => {
    let compared = 0;
    for (const source of templates) {
      const fast = compileFastTemplate(source);
      expect(fast, source).not.toBeNull();
      for (const value of values) {
        for (const missing of [undefined, ...keys]) {
          const data: Record<string, unknown> = {};
          for (const key of keys) if (key !== missing && value !== undefined) data[key] = value;
          const expected = liquidRender(source, data);
          const actual = fast!(data);
          if (actual === undefined) continue; // stepped aside: LiquidJS decides
          expect(expected, `${source} with ${JSON.stringify(data)}`).toEqual({ ok: true, text: actual });
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(100);
  });
});
