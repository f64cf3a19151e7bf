import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Liquid, type Template } from 'liquidjs';

// The dashboard's templates: Liquid files under src/web/templates, every output escaped unless a
// template says `| raw` (none does), each file parsed once when the app is built.

export const templatesDirectory = join(import.meta.dirname, 'templates');

export interface Templates {
  render(name: string, data: object): Promise<string>;
}

export function compileTemplates(directory = templatesDirectory): Templates {
  const engine = new Liquid({
    root: directory,
    extname: '.liquid',
    outputEscape: 'escape',
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
