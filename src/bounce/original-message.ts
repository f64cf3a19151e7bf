import type { MessageParts } from './mime-reader.ts';
import type { OriginalMessage } from './parsed-bounce.ts';
import { cleanAddress } from './report-fields.ts';

// The bounced message's own headers identify it: X-Herald-Log-Id (set by Herald's MTA) and
// Message-ID. They come from the attached message/rfc822 or text/rfc822-headers part, or, in
// formats without MIME structure, from the copy quoted after the report text.

const MAX_SCAN = 256 * 1024;

export function findOriginal(parts: MessageParts): OriginalMessage {
  const sources = parts.originals.length > 0 ? [...parts.originals, parts.text] : [parts.text, ...parts.attachedTexts];
  const original: OriginalMessage = {};
  for (const source of sources) {
    const text = source.length > MAX_SCAN ? source.slice(0, MAX_SCAN) : source;
    original.heraldLogId ??= /^x-herald-log-id:\s*([A-Za-z0-9_-]{1,64})\s*$/im.exec(text)?.[1];
    original.messageId ??= /^message-id:\s*(<[^>\s]+>|\S+)/im.exec(text)?.[1];
    original.to ??= cleanAddress(/^to:\s*(.+)$/im.exec(text)?.[1]);
    original.from ??= cleanAddress(/^from:\s*(.+)$/im.exec(text)?.[1]);
    original.subject ??= /^subject:\s*(.+)$/im.exec(text)?.[1]?.trim();
  }
  for (const key of Object.keys(original) as (keyof OriginalMessage)[])
    if (original[key] === undefined) delete original[key];
  return original;
}
