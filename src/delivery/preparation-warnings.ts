import type { RefusedLink } from './personalization-check.ts';

// What a preparation that succeeded still wants the operator to read: the links recipient data made
// into something Herald does not send as a link, per link, with how many recipients and which field.
// Kept with the delivery (deliveries.preparation_warnings) and shown by `delivery prepare`,
// `delivery show`, the API's delivery summary and the doctor's content check.

export interface PreparationWarning extends RefusedLink {
  code: 'LINK_REFUSED';
  message: string;
}

export function linkWarnings(refused: readonly RefusedLink[]): PreparationWarning[] {
  return refused.map((link) => ({ code: 'LINK_REFUSED', ...link, message: describeRefusedLink(link) }));
}

function describeRefusedLink(link: RefusedLink): string {
  const { recipient, value, reason } = link.example;
  const fields = link.variables.length > 0 ? link.variables.join(', ') : 'the link in the template';
  const which = link.link === null ? 'untracked link' : `link ${link.link}`;
  return `${which} (${link.urlTemplate}) is not a link for ${link.recipients} recipient(s), sent without its href (text kept, not clickable, not tracked): ${recipient} has ${JSON.stringify(value)}, ${reason}; check ${fields} in the list`;
}

/** The warnings stored with a delivery; an unreadable value reads as none rather than breaking a summary. */
export function parsePreparationWarnings(json: string): PreparationWarning[] {
  try {
    const value: unknown = JSON.parse(json);
    return Array.isArray(value) ? (value as PreparationWarning[]) : [];
  } catch {
    return [];
  }
}
