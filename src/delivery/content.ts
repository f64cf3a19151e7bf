import { Liquid, TagToken, Tokenizer, type Template } from 'liquidjs';
import { AppError } from '../common/errors.ts';
import { parseDataWithoutMarkers, stripMarkers } from '../tracking/links.ts';
import { compileFastTemplate, type FastTemplate } from './fast-template.ts';

// Personalized content: LiquidJS templates parsed once per delivery, rendered per recipient.
// The HTML template escapes every output by default (LiquidJS outputEscape: 'escape'): a value
// carrying markup prints as text, in the message and on the mirror page. A template that means to
// insert markup from data says so with `{{ value | raw }}` (docs/delivery.md). Subject and text
// are not HTML: printed as they are (CR/LF in headers are neutralised by the message builder).

export type TemplateName = 'subject' | 'html' | 'text';

export interface ContentTemplates {
  subject: string;
  html: string | null;
  text: string | null;
}

export interface RenderedContent {
  subject: string;
  html: string | null;
  text: string | null;
}

export interface CompiledContent {
  /** Renders every template for one recipient; throws TEMPLATE_RENDER naming the template and recipient. */
  render(data: Record<string, unknown>, recipient: string): RenderedContent;
}

// strictFilters: a misspelt filter is an error at parse time instead of silently vanishing text.
// strictVariables: a recipient without a value the template prints (and no `default`) fails preparation
// rather than receiving "Hello ,"; lenientIf keeps `{% if x %}` usable as a presence test.
// Templates never read files: {% include %} and {% render %} are refused.
const noFiles = {
  exists: async () => false,
  existsSync: () => false,
  readFile: async () => refuseFiles(),
  readFileSync: () => refuseFiles(),
  resolve: (_dir: string, file: string) => file,
};
// renderLimit/memoryLimit: one recipient's data (a loop bound of 10^9) cannot stall the MTA.
const engineOptions = {
  renderLimit: 2_000,
  memoryLimit: 64 * 1024 * 1024,
  strictFilters: true,
  strictVariables: true,
  lenientIf: true,
  ownPropertyOnly: true,
  cache: false,
  root: [],
  relativeReference: false,
  fs: noFiles,
};
const engine = new Liquid(engineOptions);
const htmlEngine = new Liquid({ ...engineOptions, outputEscape: 'escape' });

function refuseFiles(): never {
  throw new Error('templates cannot include files');
}

interface ParsedTemplate {
  name: TemplateName;
  liquid: Template[];
  engine: Liquid;
  /** The plain-substitution fast path, when the template allows it. */
  fast: FastTemplate | null;
}

export function compileContent(templates: ContentTemplates): CompiledContent {
  const subject = parseTemplate('subject', templates.subject);
  const html = templates.html === null ? null : parseTemplate('html', templates.html);
  const text = templates.text === null ? null : parseTemplate('text', templates.text);
  return {
    render(data, recipient) {
      return {
        subject: renderTemplate(subject, data, recipient),
        html: html === null ? null : renderTemplate(html, data, recipient),
        text: text === null ? null : renderTemplate(text, data, recipient),
      };
    },
  };
}

/** Tags that read other files: refused when the template is created, not when a recipient is rendered. */
const fileTags = new Set(['include', 'render', 'layout']);

function parseTemplate(name: TemplateName, source: string): ParsedTemplate {
  try {
    for (const token of new Tokenizer(source).readTopLevelTokens())
      if (token instanceof TagToken && fileTags.has(token.name)) {
        const line = source.slice(0, token.begin).split('\n').length;
        throw new AppError(
          'TEMPLATE_SYNTAX',
          `${name} template, line ${line}: {% ${token.name} %} is refused: templates cannot read files (put the content in the template)`,
          { details: { template: name, line } },
        );
      }
    const html = name === 'html';
    const chosen = html ? htmlEngine : engine;
    return { name, liquid: chosen.parse(source), engine: chosen, fast: compileFastTemplate(source, { html }) };
  } catch (cause) {
    if (cause instanceof AppError) throw cause;
    throw new AppError('TEMPLATE_SYNTAX', `${name} template: ${liquidMessage(cause)}`, {
      cause,
      details: { template: name, line: liquidLine(cause) },
    });
  }
}

function renderTemplate(template: ParsedTemplate, data: Record<string, unknown>, recipient: string): string {
  const fast = template.fast?.(data);
  if (fast !== undefined) return fast;
  const name = template.name;
  try {
    return template.engine.renderSync(template.liquid, data) as string;
  } catch (cause) {
    throw new AppError('TEMPLATE_RENDER', `${name} template, recipient ${recipient}: ${liquidMessage(cause)}`, {
      cause,
      details: { template: name, line: liquidLine(cause), recipient },
    });
  }
}

function liquidMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function liquidLine(error: unknown): number | undefined {
  const match = /line:(\d+)/.exec(liquidMessage(error));
  return match ? Number(match[1]) : undefined;
}

/**
 * The variables a template sees for one recipient: the recipient's personalization data (the CSV's
 * other columns) plus `email`. Preparation and the MTA both use this, so what was checked is what is sent.
 * Link-marker characters (src/tracking/links.ts) are removed from every value: recipient data can
 * never create or redirect a tracked link.
 */
export function personalizationOf(email: string, dataJson: string): Record<string, unknown> {
  const data = parseDataWithoutMarkers(dataJson);
  // The parsed object is this call's own: set on it rather than copied (once per recipient at preparation).
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    return { ...(data as object), email: stripMarkers(email) };
  (data as Record<string, unknown>).email = stripMarkers(email);
  return data as Record<string, unknown>;
}
