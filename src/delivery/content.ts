import { Liquid, type Template } from 'liquidjs';
import { AppError } from '../common/errors.ts';

// Personalized content: LiquidJS templates parsed once per delivery, rendered per recipient.

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
const engine = new Liquid({ strictFilters: true, cache: false, ownPropertyOnly: true });

export function compileContent(templates: ContentTemplates): CompiledContent {
  const subject = parseTemplate('subject', templates.subject);
  const html = templates.html === null ? null : parseTemplate('html', templates.html);
  const text = templates.text === null ? null : parseTemplate('text', templates.text);
  return {
    render(data, recipient) {
      return {
        subject: renderTemplate('subject', subject, data, recipient),
        html: html === null ? null : renderTemplate('html', html, data, recipient),
        text: text === null ? null : renderTemplate('text', text, data, recipient),
      };
    },
  };
}

function parseTemplate(name: TemplateName, source: string): Template[] {
  try {
    return engine.parse(source);
  } catch (cause) {
    throw new AppError('TEMPLATE_SYNTAX', `${name} template: ${liquidMessage(cause)}`, { cause, details: { template: name, line: liquidLine(cause) } });
  }
}

function renderTemplate(name: TemplateName, template: Template[], data: Record<string, unknown>, recipient: string): string {
  try {
    return engine.renderSync(template, data) as string;
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
