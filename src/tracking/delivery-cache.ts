import { withoutMetaRefresh } from './mirror-html.ts';
import { compileContent, personalizationOf, type CompiledContent } from '../delivery/content.ts';
import { createMessageDecorator, type DeliveryDecorator, type MessageDecoratorOptions } from './decorator.ts';
import { findRenderedLinks } from './links.ts';
import { redirectTarget } from './rendered-href.ts';
import { createTimedPromiseCache } from '../common/timed-promise-cache.ts';

// What the tracking server knows of a delivery: its tracked links (static targets resolved once),
// its templates compiled with the link markers, and a decorator to re-track links of the mirror page.
// Bounded LRU caches: a click on a static link needs no database at all.

export interface DeliverySource {
  links(deliveryId: number): Promise<Array<{ index: number; urlTemplate: string }>>;
  templates(deliveryId: number): Promise<{ subject: string; html: string | null; text: string | null } | undefined>;
  log(
    logId: number,
  ): Promise<{ id: number; deliveryId: number; email: string; data: string; sentAt?: number | null } | undefined>;
}

/** One recipient's rendered HTML (links still marked), and when the message was sent. */
interface RenderedMessage {
  html: string;
  sentAt: number | null;
}

interface CachedDelivery {
  loadedAt: number;
  /** Per link index: the redirect target when the URL has no Liquid, or 'dynamic'. */
  links: Map<number, string | 'dynamic'>;
  templates: { subject: string; html: string | null; text: string | null } | undefined;
  compiled?: CompiledContent;
  decorator?: DeliveryDecorator;
}

export interface DeliveryCache {
  /** Without awaiting: the target of a static link of a delivery already loaded, else undefined (use clickTarget). */
  cachedStaticTarget(deliveryId: number, linkIndex: number, now: number): string | undefined;
  /** The URL a click token leads to, or undefined (unknown link, render failure, unsafe URL). */
  clickTarget(
    deliveryId: number,
    logId: number,
    linkIndex: number,
    occurrence: number,
    now: number,
  ): Promise<string | undefined>;
  /** The recipient's mirror page, or undefined. */
  mirrorPage(deliveryId: number, logId: number, now: number): Promise<string | undefined>;
  /** The email of a log of this delivery, or undefined. */
  emailOf(deliveryId: number, logId: number): Promise<string | undefined>;
}

export interface DeliveryCacheOptions {
  source: DeliverySource;
  decorator: MessageDecoratorOptions;
  maxDeliveries?: number;
  maxRenderedLogs?: number;
  refreshMs?: number;
  /** How long a recipient's mirror page is served from memory. */
  mirrorPageMs?: number;
}

export function createDeliveryCache(options: DeliveryCacheOptions): DeliveryCache {
  const { source } = options;
  const maxDeliveries = options.maxDeliveries ?? 200;
  const maxRendered = options.maxRenderedLogs ?? 2_000;
  const refreshMs = options.refreshMs ?? 300_000;
  const deliveries = new Map<number, Promise<CachedDelivery>>();
  // The same entries once loaded, for the synchronous fast path of static links (no promise, no DB).
  const loaded = new Map<number, CachedDelivery>();
  // A scanner following every link of one message renders it once.
  const rendered = new Map<number, Promise<RenderedMessage | undefined>>();
  // A mirror page costs a render, an HMAC per link and maybe an HTML parse (~0.5 ms for 20 KB and 50
  // links, fifteen redirects' worth): one token's holder reloading it in a loop took a whole core.
  // Served from memory for a minute per log, concurrent views sharing one render.
  const mirrors = createTimedPromiseCache<string, string | undefined>({
    ttlMs: options.mirrorPageMs ?? 60_000,
    maxEntries: maxRendered,
  });
  const decorators = createMessageDecorator(options.decorator);

  function delivery(deliveryId: number, now: number): Promise<CachedDelivery> {
    const cached = deliveries.get(deliveryId);
    if (cached) {
      deliveries.delete(deliveryId);
      deliveries.set(deliveryId, cached);
      return cached.then((entry) => (now - entry.loadedAt < refreshMs ? entry : reload(deliveryId, now)));
    }
    return reload(deliveryId, now);
  }

  function reload(deliveryId: number, now: number): Promise<CachedDelivery> {
    const loading = (async (): Promise<CachedDelivery> => {
      const [rows, templates] = await Promise.all([source.links(deliveryId), source.templates(deliveryId)]);
      const links = new Map<number, string | 'dynamic'>();
      for (const row of rows) {
        if (row.urlTemplate.includes('{{') || row.urlTemplate.includes('{%')) links.set(row.index, 'dynamic');
        else {
          const target = redirectTarget(row.urlTemplate);
          if (target) links.set(row.index, target);
        }
      }
      const entry = { loadedAt: now, links, templates };
      loaded.set(deliveryId, entry);
      return entry;
    })();
    loading.catch(() => deliveries.delete(deliveryId));
    deliveries.set(deliveryId, loading);
    while (deliveries.size > maxDeliveries) {
      const oldest = deliveries.keys().next().value!;
      deliveries.delete(oldest);
      loaded.delete(oldest);
    }
    return loading;
  }

  function prepared(
    entry: CachedDelivery,
    deliveryId: number,
  ): { compiled: CompiledContent; decorator: DeliveryDecorator } | undefined {
    if (!entry.templates) return undefined;
    if (!entry.compiled || !entry.decorator) {
      const decorator = decorators.forDelivery(deliveryId, entry.templates.html);
      entry.decorator = decorator;
      entry.compiled = compileContent({
        subject: entry.templates.subject,
        html: decorator.htmlTemplate,
        text: entry.templates.text,
      });
    }
    return { compiled: entry.compiled, decorator: entry.decorator };
  }

  async function renderHtml(deliveryId: number, logId: number, now: number): Promise<RenderedMessage | undefined> {
    const entry = await delivery(deliveryId, now);
    const ready = prepared(entry, deliveryId);
    if (!ready) return undefined;
    const log = await source.log(logId);
    if (!log || log.deliveryId !== deliveryId) return undefined;
    try {
      const data = { ...personalizationOf(log.email, log.data), ...ready.decorator.variables(logId, now) };
      const html = ready.compiled.render(data, log.email).html;
      return html === null ? undefined : { html, sentAt: log.sentAt ?? null };
    } catch {
      return undefined;
    }
  }

  return {
    cachedStaticTarget(deliveryId, linkIndex, now) {
      const entry = loaded.get(deliveryId);
      if (!entry || now - entry.loadedAt >= refreshMs) return undefined;
      const link = entry.links.get(linkIndex);
      return link === 'dynamic' ? undefined : link;
    },
    async clickTarget(deliveryId, logId, linkIndex, occurrence, now) {
      const entry = await delivery(deliveryId, now);
      const link = entry.links.get(linkIndex);
      if (link === undefined) return undefined;
      if (link !== 'dynamic') return link;
      let html = rendered.get(logId);
      if (!html) {
        html = renderHtml(deliveryId, logId, now);
        html.catch(() => rendered.delete(logId));
        rendered.set(logId, html);
        while (rendered.size > maxRendered) rendered.delete(rendered.keys().next().value!);
      }
      const document = (await html)?.html;
      if (document === undefined) return undefined;
      const found = findRenderedLinks(document).find((l) => l.index === linkIndex && l.occurrence === occurrence);
      return found ? redirectTarget(found.value) : undefined;
    },
    mirrorPage(deliveryId, logId, now) {
      return mirrors.get(`${deliveryId}:${logId}`, now, () => buildMirrorPage(deliveryId, logId, now));
    },
    async emailOf(deliveryId, logId) {
      const log = await source.log(logId);
      return log && log.deliveryId === deliveryId ? log.email : undefined;
    },
  };

  async function buildMirrorPage(deliveryId: number, logId: number, now: number): Promise<string | undefined> {
    const message = await renderHtml(deliveryId, logId, now);
    if (message === undefined) return undefined;
    const entry = await delivery(deliveryId, now);
    // Its links are signed as of the message's sending, as in the message itself: signed as of the
    // page view, a reader clicking within tracking.automatedClickSeconds of opening the page was
    // flagged `tooSoon` (an automated click) and left out of the human indicators.
    const issuedAt = message.sentAt ?? now;
    const page = prepared(entry, deliveryId)?.decorator.decorate(logId, message.html, issuedAt, {
      pixel: false,
    }).html;
    return page == null ? undefined : withoutMetaRefresh(page);
  }
}
