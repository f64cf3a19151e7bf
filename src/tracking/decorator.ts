import {
  analyzeHtmlTemplate,
  findRenderedHrefs,
  linkEnd,
  linkStart,
  pixelMarker,
  stripMarkers,
  type ExtractedLink,
  type HrefAttribute,
} from './links.ts';
import { classifyRenderedHref } from './rendered-href.ts';
import type { KeyRing } from './token.ts';

// The MTA's message decorator: tracked links, open pixel, mirror URL and the RFC 8058 one-click
// unsubscribe headers. Everything that depends only on the template is done once per delivery
// (forDelivery); per message it is indexOf scans, string joins and a few HMACs. Pure: time is passed in.

export interface MessageDecoratorOptions {
  keyRing: KeyRing;
  /** Public base URL of the tracking server, e.g. https://t.example.com (no trailing slash needed). */
  baseUrl: string;
  /** Domain of the mailto: unsubscribe address (unsubscribe+TOKEN@domain); null: https only. */
  unsubscribeMailDomain: string | null;
}

export interface DecoratedMessage {
  html: string | null;
  /** Extra header lines ("Name: value", folded with CRLF + space) to add before DKIM signing. */
  headers: string[];
}

export interface DeliveryDecorator {
  deliveryId: number;
  links: ExtractedLink[];
  /** Compile THIS html template instead of the delivery's own (it carries the link markers). */
  htmlTemplate: string | null;
  /** Variables to merge into the recipient's template data before rendering: { mirror_url }. */
  variables(logId: number, nowMs: number): { mirror_url: string };
  /** After rendering: rewrites the marked links, adds the pixel, returns the extra headers. */
  decorate(logId: number, renderedHtml: string | null, nowMs: number, options?: { pixel?: boolean }): DecoratedMessage;
}

export interface MessageDecorator {
  forDelivery(deliveryId: number, htmlTemplate: string | null): DeliveryDecorator;
}

export function createMessageDecorator(options: MessageDecoratorOptions): MessageDecorator {
  const base = options.baseUrl.replace(/\/+$/, '');
  const { keyRing } = options;
  const mailDomain = options.unsubscribeMailDomain;
  return {
    forDelivery(deliveryId, htmlTemplate) {
      const analysis =
        htmlTemplate === null
          ? { links: [], hrefs: [], guarded: [], markedTemplate: null }
          : analyzeHtmlTemplate(htmlTemplate);
      // Links without Liquid are known to be http(s) already: no URL parsing per message for them.
      const isStatic = analysis.links.map((l) => !l.urlTemplate.includes('{{') && !l.urlTemplate.includes('{%'));
      const tokenOf = (kind: 'open' | 'mirror' | 'unsubscribe', logId: number, issuedAt: number) =>
        keyRing.sign({ kind, deliveryId, logId, issuedAt });
      return {
        deliveryId,
        links: analysis.links,
        htmlTemplate: analysis.markedTemplate,
        variables(logId, nowMs) {
          return { mirror_url: `${base}/m/${tokenOf('mirror', logId, Math.floor(nowMs / 1_000))}` };
        },
        decorate(logId, renderedHtml, nowMs, decorateOptions) {
          const issuedAt = Math.floor(nowMs / 1_000);
          const unsubscribe = tokenOf('unsubscribe', logId, issuedAt);
          const headers = [
            mailDomain
              ? `List-Unsubscribe: <${base}/u/${unsubscribe}>,\r\n <mailto:unsubscribe+${unsubscribe}@${mailDomain}>`
              : `List-Unsubscribe: <${base}/u/${unsubscribe}>`,
            // RFC 8058 §3.1: tells the receiver the https URI accepts a one-click POST.
            'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
          ];
          if (renderedHtml === null) return { html: null, headers };
          const pixel =
            decorateOptions?.pixel === false
              ? ''
              : `<img src="${base}/o/${tokenOf('open', logId, issuedAt)}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">`;
          return {
            html: rewrite(
              renderedHtml,
              pixel,
              isStatic,
              analysis,
              (index, occurrence) =>
                `${base}/r/${keyRing.sign({ kind: 'click', deliveryId, logId, linkIndex: index, occurrence, issuedAt })}`,
            ),
            headers,
          };
        },
      };
    },
  };
}

function rewrite(
  rendered: string,
  pixel: string,
  isStatic: readonly boolean[],
  marks: { hrefs: readonly HrefAttribute[]; guarded: readonly HrefAttribute[] },
  trackedUrl: (index: number, occurrence: number) => string,
): string {
  const parts: string[] = [];
  let copied = 0;
  if (rendered.indexOf(linkStart) >= 0) {
    for (const link of findRenderedHrefs(rendered)) {
      const before = rendered.slice(copied, link.start);
      const href = (link.guarded ? marks.guarded : marks.hrefs)[link.index];
      const verdict =
        (!link.guarded && isStatic[link.index] === true) || href === undefined
          ? 'track'
          : classifyRenderedHref(link.value, href.quote, link.guarded).kind;
      copied = link.end;
      // An opted-out link stays as it rendered when it is http(s): the operator asked for no tracking.
      if (verdict === 'track' && !link.guarded) parts.push(before, trackedUrl(link.index, link.occurrence));
      else if (verdict !== 'refuse') parts.push(before, link.value);
      else if (before.endsWith(href!.before) && rendered.startsWith(href!.quote, link.end)) {
        // Recipient data made it javascript:, data:, a relative URL…: the href attribute is removed,
        // so the text stays and nothing is clickable (a mail client would open what it points to).
        parts.push(before.slice(0, before.length - href!.before.length));
        copied += href!.quote.length;
      } else parts.push(before);
    }
  }
  parts.push(rendered.slice(copied));
  let html = parts.join('');
  const pixelAt = html.indexOf(pixelMarker);
  html = pixelAt >= 0 ? html.slice(0, pixelAt) + pixel + html.slice(pixelAt + 1) : html + pixel;
  // A marker cut off by a filter (truncate, url_encode of a captured block) must not reach the reader.
  return html.indexOf(linkStart) >= 0 ||
    html.indexOf(linkEnd) >= 0 ||
    html.indexOf(pixelMarker) >= 0 ||
    html.indexOf('\uE001') >= 0
    ? stripMarkers(html)
    : html;
}
