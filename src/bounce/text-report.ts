import { cleanAddress } from './report-fields.ts';
import type { SmtpPhase } from './types.ts';

// Heuristics for human-readable bounces (no RFC 3464 part). MTAs differ in wording but share a
// shape: boilerplate, then each failed address followed by its diagnostic, then a copy of the
// original message. We cut the copy, anchor blocks on the failed addresses, and read the SMTP
// reply (code, enhanced status, command, remote host) out of each block.

export interface TextBlock {
  recipient: string;
  diagnostic: string;
}

const MAX_LINES = 3000;
/** Recipients read from one message, whatever it lists: Herald sends one recipient per message, so a
 *  genuine report names a few; a crafted one naming thousands would cost parse time per name. */
export const MAX_RECIPIENTS = 200;
const MAX_PREAMBLE_CHARS = 4_000;

// Where the quoted original starts: Postfix/qmail/Exim/Yahoo/Gmail/Notes/Exchange wordings.
const ORIGINAL_MARKERS = [
  /^-{2,}\s*(?:this is a copy of|below this line is a copy|the header of the original|original message|returned message|original mail info|unsent message|message headers follow|start of returned message)/i,
  /^(?:original message follows|message headers follow|original message headers|-+ ?original message ?-+|\[original message\]|included is a copy of the message|the original message headers? (?:is|are) (?:following|below)|content-type: message\/rfc822)/i,
  /^(?:received|return-path|dkim-signature|x-received|arc-seal|x-google-smtp-source|authentication-results|x-originating-ip):\s/i,
];
const SUMMARY_HEADER = /^(?:from|subject|date|to|sent|cc)\s*:\s/i;
// Lines that name addresses which are not the failed recipient.
const NON_RECIPIENT_LINE =
  /^(?:>+\s*)?(?:from|to|cc|bcc|reply-to|sender|return-path|message-id|in-reply-to|references|mail from|envelope-from|original sender|x-sender|date|subject|sent|original-envelope-id|reporting-mta|received-from-mta|x-postfix-sender|x-actual-recipient|arrival-date)\s*:|please contact|for further assistance|send mail to/i;
// A match starts only where a run of local-part characters starts (the look-behind): a long run
// with no `@domain` after it is then read once, not once per character (quadratic time on
// sender-controlled lines).
const ADDRESS =
  /<?(?<![a-z0-9!#$%&'*+/=?^_`{|}~.-])([a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)>?/gi;

/** The report part of a human-readable bounce: unquoted, without the copy of the original. */
export function reportLines(text: string): string[] {
  let lines = text.split(/\r?\n/, MAX_LINES);
  const quoted = lines.filter((l) => l.startsWith('>')).length;
  // A forwarded bounce quotes the whole report with "> ".
  if (quoted > 5 && quoted > lines.filter((l) => l.trim()).length / 2) lines = lines.map((l) => l.replace(/^>\s?/, ''));
  const out: string[] = [];
  let seenContent = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (seenContent && ORIGINAL_MARKERS.some((m) => m.test(line))) break;
    // A dashed rule followed by From:/Subject: is a summary of the original (AH, Biglobe, KDDI).
    if (seenContent && /^[-=*_]{10,}$/.test(line) && SUMMARY_HEADER.test(lines[i + 1]?.trim() ?? '')) break;
    if (line) seenContent = true;
    out.push(lines[i]!);
  }
  return out;
}

/** Candidate failed addresses in order of appearance, skipping the bounce's own addresses. */
export function findRecipients(lines: string[], exclude: Set<string>): string[] {
  const found: string[] = [];
  for (const line of lines) {
    if (NON_RECIPIENT_LINE.test(line.trim())) continue;
    for (const address of addressesIn(line)) {
      if (exclude.has(address) || found.includes(address) || /^(?:mailer-daemon|mailer_daemon)@/.test(address))
        continue;
      found.push(address);
      if (found.length >= MAX_RECIPIENTS) return found;
    }
  }
  return found;
}

function addressesIn(line: string): string[] {
  if (!line.includes('@')) return [];
  // Addresses inside URLs (unsubscribe links, help pages) are not recipients.
  // Exim and Sendmail name the alias a recipient was expanded from; it is not another recipient.
  const withoutUrls = line
    .replace(/\b(?:https?|mailto):\S+/gi, ' ')
    .replace(/\((?:ultimately )?(?:generated|expanded) from:?[^)]*\)/gi, ' ');
  const out: string[] = [];
  for (const match of withoutUrls.matchAll(ADDRESS)) {
    const address = cleanAddress(match[1]);
    if (address && !/\.(?:png|gif|jpe?g)$/.test(address)) out.push(address);
  }
  return out;
}

/** One diagnostic block per recipient: the lines from its first mention to the next recipient's. */
export function blocksFor(lines: string[], recipients: string[]): TextBlock[] {
  const wanted = new Set(recipients);
  // Each recipient's lines, gathered in one pass (not one pass per recipient).
  const owned = new Map<string, string[]>();
  const preambleLines: string[] = [];
  let current: string | undefined;
  for (const line of lines) {
    const mentioned = NON_RECIPIENT_LINE.test(line.trim()) ? [] : addressesIn(line).filter((a) => wanted.has(a));
    if (mentioned.length > 0 && !mentioned.includes(current ?? '')) current = mentioned[0];
    if (current === undefined) preambleLines.push(line);
    else {
      const own = owned.get(current);
      if (own) own.push(line);
      else owned.set(current, [line]);
    }
  }
  // Copied into each recipient's diagnostic that needs it: bounded, as the classifier reads the
  // first 2,000 characters anyway.
  const preamble = preambleLines.join('\n').slice(0, MAX_PREAMBLE_CHARS);
  const preambleHasReply = HAS_REPLY.test(preamble);
  return recipients.map((recipient) => {
    const own = (owned.get(recipient) ?? []).join('\n');
    // Some formats state the reply before listing the addresses (MailMarshal, Apache James).
    const usePreamble = !isSubstantive(own, recipient) || (!HAS_REPLY.test(own) && preambleHasReply);
    const diagnostic = usePreamble ? `${preamble}\n${own}` : own;
    return { recipient, diagnostic: diagnostic.trim() };
  });
}

const HAS_REPLY = /(?<![\d.])[45]\d\d(?![\d.])|(?<![\d.])[45]\.\d{1,3}\.\d{1,3}(?!\.?\d)/;

function isSubstantive(block: string, recipient: string): boolean {
  const rest = block
    .split(recipient)
    .join(' ')
    .replace(/[<>\s:;,.()[\]*-]+/g, ' ')
    .trim();
  return /[a-z]{3,}.*[a-z]{3,}/i.test(rest) && rest.length >= 10;
}

export interface ReplyFacts {
  code?: number;
  status?: string;
  phase?: SmtpPhase;
  mxHost?: string;
}

const CODE_WITH_STATUS = /(?<![\d.])([245]\d\d)[ -]+['"]?#?([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)/;
const STATUS_ONLY = /(?<![\d.])#?([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)/;
// Without an enhanced status only failure codes are read: sizes and counts ("222 bytes") look like 2yz codes.
const CODE_ONLY = /(?<![\d./:-])(?:^|(?<=[\s<>[(:]))([45][0-5]\d)(?=[\s,:)\]-]|$)/m;
// "(?<!\w)" rather than "\b": a transcript's ">>> RCPT TO" follows a space, not a word. A
// transcript's ">>> DATA" says nothing: with PIPELINING (RFC 2920) the refusals of RCPT TO arrive
// after DATA was sent.
const PHASES: [RegExp, SmtpPhase][] = [
  [
    /(?<!\w)(?:in reply to|after|did not like our)\s*(?:the\s+)?end of (?:data|message)\b|failed after i sent the message/i,
    'dot',
  ],
  [
    /(?<!\w)(?:in reply to|after|did not like our|>>>|error following)\s*(?:the\s+)?(?:rcpt to|rcpt)\b|\[rcpt_to\]|does not like recipient/i,
    'rcpt',
  ],
  [/(?<!\w)(?:in reply to|after|did not like our|>>>)\s*(?:the\s+)?(?:mail from|mail)\b|\[mail_from\]/i, 'mail'],
  [/(?<!\w)(?:in reply to|after|did not like our)\s*(?:the\s+)?data\b|\(data\)|smtp command\s+data\b/i, 'data'],
  [/(?<!\w)(?:in reply to|after|>>>)\s*(?:the\s+)?(?:helo|ehlo)\b/i, 'helo'],
  // Postfix writes "host X refused to talk to me: <reply>" when the greeting banner is not 2yz
  // (smtp_proto.c, smtp_helo).
  [
    /\b(?:after initial connection|in reply to (?:the )?(?:initial|greeting|banner)|during (?:the )?connection|greeting|refused to talk to me)\b/i,
    'connect',
  ],
  // A greeting names the server first (RFC 5321 §4.2: reply code, its domain, then text), so a
  // refusal of the form "554 mx.example.com ESMTP not accepting connections" is its banner.
  [/(?<![\d.])[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3} )?[a-z0-9-]+(?:\.[a-z0-9-]+)+ e?smtp\b/i, 'connect'],
];
const MX_HOST = [
  /\bhost\s+([a-z0-9][a-z0-9.-]*\.[a-z]{2,})\s*\[[0-9a-f.:]+\]/i,
  /\bwhile talking to\s+([a-z0-9][a-z0-9.-]*\.[a-z]{2,})/i,
  /\bfor the recipient domain \S+ by ([a-z0-9][a-z0-9.-]*\.[a-z]{2,})/i,
  /\bremote-mta:\s*(?:dns;\s*)?([a-z0-9][a-z0-9.-]*\.[a-z]{2,})/i,
];

/** Reply code, enhanced status, SMTP command and remote host mentioned in a diagnostic. */
export function replyFacts(text: string): ReplyFacts {
  const facts: ReplyFacts = {};
  const both = CODE_WITH_STATUS.exec(text);
  if (both) {
    facts.code = Number(both[1]);
    facts.status = both[2];
  } else {
    const status = STATUS_ONLY.exec(text);
    if (status) facts.status = status[1];
    const code = CODE_ONLY.exec(text);
    if (code) facts.code = Number(code[1]);
  }
  // Reports wrap their text ("refused to\n    talk to me"): the wordings are read on one line.
  const flat = text.replace(/\s+/g, ' ');
  for (const [pattern, phase] of PHASES) {
    if (pattern.test(flat)) {
      facts.phase = phase;
      break;
    }
  }
  for (const pattern of MX_HOST) {
    const match = pattern.exec(flat);
    if (match) {
      facts.mxHost = match[1]!.toLowerCase();
      break;
    }
  }
  return facts;
}
