import { analyzeHtmlTemplate } from '../tracking/links.ts';
import type { DoctorCheck, Finding } from './finding.ts';
import { logsCommand } from './replies.ts';
import type { ContentFacts, DeliveryFacts } from './snapshot.ts';

// Content that slows sending: providers scan large messages longer, Gmail clips HTML above ~102 KB,
// and many links or images look like the bulk mail filters are tuned against; a 5.3.4 / 552 "message
// too large" reply is the provider saying so outright.

const utf8 = new TextEncoder();

/** Pure: the size, tracked links and images of a delivery's templates. */
export function measureContent(html: string | null, text: string | null): ContentFacts {
  const source = html ?? '';
  const lower = source.toLowerCase();
  let images = 0;
  for (let at = lower.indexOf('<img'); at >= 0; at = lower.indexOf('<img', at + 4)) {
    const next = lower.charCodeAt(at + 4);
    // `<img` followed by whitespace, `/` or `>`: not `<imgx>`.
    if (next === 32 || next === 9 || next === 10 || next === 13 || next === 47 || next === 62) images++;
  }
  return {
    htmlBytes: utf8.encode(source).length,
    textBytes: utf8.encode(text ?? '').length,
    links: source === '' ? 0 : analyzeHtmlTemplate(source).links.length,
    images,
  };
}

const activeStates = new Set(['prepared', 'start_pending', 'in_progress', 'paused']);

export const contentCheck: DoctorCheck = {
  name: 'content',
  description:
    'deliveries whose content slows sending: HTML above the size providers clip, too many links or images, "message too large" replies',
  run(snapshot, _now, settings) {
    const findings: Finding[] = [];
    for (const delivery of snapshot.deliveries) {
      if (delivery.scope === 'recent' || !activeStates.has(delivery.state)) continue;
      const content = delivery.content;
      const problems: string[] = [];
      if (content.htmlBytes > settings.contentHtmlMaxBytes)
        problems.push(
          `the HTML weighs ${Math.round(content.htmlBytes / 1024)} KB (above ${Math.round(settings.contentHtmlMaxBytes / 1024)} KB Gmail clips the message and filters scan it longer)`,
        );
      if (content.links > settings.contentMaxLinks)
        problems.push(`${content.links} tracked links (more than ${settings.contentMaxLinks})`);
      if (content.images > settings.contentMaxImages)
        problems.push(`${content.images} images (more than ${settings.contentMaxImages})`);
      const tooLarge = delivery.replies.filter(
        (g) => g.category === 'emailtoolarge' || g.enhanced === '5.3.4' || g.enhanced === '5.2.3' || g.code === 552,
      );
      const refused = tooLarge.reduce((sum, g) => sum + g.count, 0);
      if (refused > 0) problems.push(`${refused} messages refused as too large ("${tooLarge[0]!.sample}")`);
      findings.push(...refusedLinkFindings(delivery));
      if (problems.length === 0) continue;
      const pending = delivery.counts.pending;
      findings.push({
        check: 'content',
        severity: refused > 0 ? 'critical' : 'warning',
        subject: `delivery ${delivery.id}`,
        symptom: `its content slows sending: ${problems.join('; ')}`,
        cause:
          'large or link- and image-heavy messages take providers longer to accept (content scanning), are throttled or filtered as bulk, and are clipped in the reader',
        fix: 'make the message lighter before the next send: move CSS out of repeated inline styles, host images instead of embedding them, keep the HTML under ~100 KB, fewer links and images (a text part helps); then `herald delivery create` the new version — a running delivery keeps its content',
        evidence: {
          deliveryId: delivery.id,
          ...content,
          thresholds: {
            htmlBytes: settings.contentHtmlMaxBytes,
            links: settings.contentMaxLinks,
            images: settings.contentMaxImages,
          },
          refusedTooLarge: refused,
        },
        impact: refused > 0 ? refused : pending,
        ...(refused > 0 ? { logs: logsCommand(delivery.id, { code: tooLarge[0]!.code }) } : {}),
      });
    }
    return findings;
  },
};

/**
 * Links recipient data made into something not sent as a link (javascript:, data:…): those
 * recipients' messages go with the link's text but without its href. The list holds the cause.
 */
function refusedLinkFindings(delivery: DeliveryFacts): Finding[] {
  return (delivery.preparationWarnings ?? []).map((warning) => ({
    check: 'content',
    severity: 'warning',
    subject: `delivery ${delivery.id}`,
    symptom: `${warning.recipients} recipient(s) get ${warning.link === null ? 'an untracked link' : `link ${warning.link}`} (${warning.urlTemplate}) without its href: not clickable, not tracked`,
    cause: `the list's ${warning.variables.join(', ') || 'data'} for them is not an http(s) or mailto URL (${warning.example.recipient}: ${JSON.stringify(warning.example.value)}, ${warning.example.reason}) — a typo, or data written by someone who should not choose where a link goes`,
    fix: `correct ${warning.variables.join(', ') || 'the values'} in the list at its source and re-import it before the next send (\`herald import recipients FILE --list NAME\` updates rows by address); a delivery already prepared keeps its logs`,
    evidence: { deliveryId: delivery.id, ...warning },
    impact: warning.recipients,
  }));
}
