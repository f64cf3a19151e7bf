import { compileContent, type CompiledContent } from '../delivery/content.ts';
import type { DeliveryContent, MtaStore } from './mta-store.ts';

// Each delivery's templates are parsed once and kept while its messages flow. The row is re-read
// after `refreshMs` so a pause, a stop or a new validity end is noticed without a restart.

/**
 * What the MTA needs from link tracking (src/tracking implements it): per delivery, a marked HTML
 * template to compile; per message, extra template variables and the rewritten HTML plus headers.
 */
export interface MessageDecorator {
  forDelivery(deliveryId: number, htmlTemplate: string | null): DeliveryDecoration;
}

export interface DeliveryDecoration {
  htmlTemplate: string | null;
  variables(logId: number, now: number): Record<string, string>;
  decorate(logId: number, html: string | null, now: number): { html: string | null; headers: string[] };
}

export type CachedDelivery =
  | { kind: 'ready'; content: DeliveryContent; compiled: CompiledContent; decoration: DeliveryDecoration | null }
  | { kind: 'broken'; content: DeliveryContent; error: string }
  | { kind: 'missing' };

export interface ContentCache {
  get(deliveryId: number, now: number): Promise<CachedDelivery>;
}

export function createContentCache(
  store: MtaStore,
  decorator: MessageDecorator | null = null,
  refreshMs = 10_000,
): ContentCache {
  const entries = new Map<number, { loadedAt: number; value: Promise<CachedDelivery> }>();
  return {
    get(deliveryId, now) {
      const entry = entries.get(deliveryId);
      if (entry && now - entry.loadedAt < refreshMs) return entry.value;
      const previous = entry?.value;
      const value = store.loadDeliveryContent(deliveryId).then(async (content): Promise<CachedDelivery> => {
        if (!content) return { kind: 'missing' };
        // Templates cannot change while a delivery is in progress: keep the compiled ones.
        const earlier = previous ? await previous.catch(() => undefined) : undefined;
        if (earlier?.kind === 'ready')
          return { kind: 'ready', content, compiled: earlier.compiled, decoration: earlier.decoration };
        try {
          const decoration = decorator ? decorator.forDelivery(content.id, content.htmlTemplate) : null;
          const html = decoration ? decoration.htmlTemplate : content.htmlTemplate;
          const compiled = compileContent({ subject: content.subjectTemplate, html, text: content.textTemplate });
          return { kind: 'ready', content, compiled, decoration };
        } catch (error) {
          return { kind: 'broken', content, error: (error as Error).message };
        }
      });
      value.catch(() => entries.delete(deliveryId));
      entries.set(deliveryId, { loadedAt: now, value });
      return value;
    },
  };
}
