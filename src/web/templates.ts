import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type FilterImplOptions, filters, Liquid, type Template } from 'liquidjs';
import { showBidiControls } from './visible-controls.ts';

// The dashboard's templates: Liquid files under src/web/templates, every output escaped unless a
// template says `| raw` (none does), each file parsed once when the app is built. Every output also
// shows its Unicode bidirectional controls as [U+202E] (visible-controls.ts), so a cell cannot
// display another text than it holds; a form field that posts its value back writes it with
// `| attribute` (escaped, controls kept), so what is posted is the value itself.

/** Liquid's own `escape` (& < > " '). */
const escapeHtml = filters.escape as Extract<FilterImplOptions, (...args: never[]) => unknown>;

/** Every output: escaped, its bidirectional controls shown. */
function escapeShowingControls(this: ThisParameterType<typeof escapeHtml>, value: unknown): string {
  return showBidiControls(escapeHtml.call(this, value));
}

export const templatesDirectory = join(import.meta.dirname, 'templates');

export interface Templates {
  render(name: string, data: object): Promise<string>;
}

export function compileTemplates(directory = templatesDirectory): Templates {
  const engine = new Liquid({
    root: directory,
    extname: '.liquid',
    outputEscape: escapeShowingControls as (value: unknown) => string,
    cache: true,
    strictFilters: true,
    ownPropertyOnly: true,
  });
  engine.registerFilter('number', (value: unknown) =>
    typeof value === 'number' && Number.isFinite(value) ? value.toLocaleString('en-US') : value,
  );
  engine.registerFilter('percent', (value: unknown, total: unknown) =>
    typeof value === 'number' && typeof total === 'number' && total > 0
      ? Math.min(100, Math.round((value * 1000) / total) / 10)
      : 0,
  );
  engine.registerFilter('iso', (value: unknown) =>
    typeof value === 'number' && Number.isFinite(value) ? new Date(value).toISOString().replace('.000Z', 'Z') : '—',
  );
  engine.registerFilter('attribute', {
    handler(value: unknown) {
      return escapeHtml.call(this, value);
    },
    raw: true,
  });
  engine.registerFilter('json', (value: unknown) => JSON.stringify(value ?? null));
  const compiled = new Map<string, Template[]>();
  for (const file of readdirSync(directory)) {
    if (!file.endsWith('.liquid')) continue;
    const name = file.slice(0, -'.liquid'.length);
    compiled.set(name, engine.parseFileSync(name));
  }
  return {
    render: async (name, data) => {
      const template = compiled.get(name);
      if (!template) throw new Error(`no dashboard template ${name}`);
      return engine.render(template, data) as Promise<string>;
    },
  };
}
