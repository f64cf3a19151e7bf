import { isUnsubscribeRequest, parseFeedbackReport } from './feedback-report.ts';
import { DEFAULT_READ_LIMITS, headerValue, readMessage, type MessageParts, type ReadLimits } from './mime-reader.ts';
import { splitMailbox } from './mailbox-file.ts';
import { findOriginal } from './original-message.ts';
import type { DsnAction, ParsedBounce, ParsedRecipient } from './parsed-bounce.ts';
import { cleanAddress, firstField, parseFieldGroups, stripTypePrefix, type FieldGroup } from './report-fields.ts';
import { parseSesNotification } from './ses-notification.ts';
import { blocksFor, findRecipients, MAX_RECIPIENTS, replyFacts, reportLines, type TextBlock } from './text-report.ts';
import { parseVerpAddress } from './verp.ts';

export interface ParseBounceOptions {
  limits?: ReadLimits;
  /** Local-part prefix of VERP addresses (`bounce` in `bounce+<id>@<domain>`). */
  verpPrefix?: string;
}

// Signals that a message without an RFC 3464 part is a delivery report.
const DAEMON_FROM = /^(?:mailer[-_]?daemon|mail[-_]?daemon|postmaster|post_master|mail[-_]?delivery|mdaemon|nobody)\b/i;
const DAEMON_NAME = /mail delivery|mailer[- ]?daemon|postmaster|delivery (?:subsystem|system|service)/i;
const BOUNCE_SUBJECT =
  /undeliver|undelivered|delivery (?:status|fail|notification|problem|has failed|report|error)|returned mail|return(?:ed|ing) (?:mail|message)|failure notice|failed delivery|mail delivery failed|non.?deliver|could not be delivered|mail system error|error sending|not delivered|delivery incomplete|メールエラー|не доставлено|unzustellbar|non remis|no entregado|mail failure/i;
const BOUNCE_BODY =
  /could not be delivered|undeliverable|delivery (?:has )?failed|permanent (?:fatal )?error|unable to deliver|following (?:recipient|address)|was not delivered|delivery to the following|not be delivered|failed permanently|rejected by|user unknown|no such user|transcript of session|delivery problems|message could not|returned mail|error sending/i;
const AUTO_REPLY_SUBJECT =
  /^(?:auto(?:matic)?[ _-]?(?:reply|response|antwort|risposta|respuesta)|out of (?:the )?office|abwesenheit|absence|vacation|away from|r[ée]ponse automatique)/i;

/** Every bounce a file holds: one message, or each message of a mailbox file (mailbox-file.ts). */
export async function parseBounceMessages(raw: Uint8Array, options: ParseBounceOptions = {}): Promise<ParsedBounce[]> {
  const parsed: ParsedBounce[] = [];
  for (const message of splitMailbox(raw)) parsed.push(await parseBounceMessage(message, options));
  return parsed;
}

export async function parseBounceMessage(raw: Uint8Array, options: ParseBounceOptions = {}): Promise<ParsedBounce> {
  const read = await readMessage(raw, options.limits ?? DEFAULT_READ_LIMITS);
  if (!read.ok) return { kind: 'unparseable', format: 'none', recipients: [], original: {}, error: read.error };
  const parts = read.parts;
  const original = findOriginal(parts);
  const bounce: ParsedBounce = {
    kind: 'not_bounce',
    format: 'none',
    recipients: [],
    original,
    subject: parts.subject,
    from: parts.from,
    messageId: headerValue(parts, 'message-id')?.trim() || undefined,
  };
  const verpPrefix = options.verpPrefix ?? 'bounce';
  attachLogId(bounce, parts, verpPrefix);
  const ownAddresses = envelopeRecipients(parts).filter((a) => parseVerpAddress(a, verpPrefix) !== undefined);
  const exclude = new Set([parts.from, ...parts.to, ...ownAddresses].filter(Boolean));

  if (parts.feedbackReports.length > 0) {
    return {
      ...bounce,
      kind: 'arf',
      format: 'arf',
      // As many as a delivery report gives (a genuine feedback report names one recipient).
      recipients: parts.feedbackReports.flatMap((r) => parseFeedbackReport(r, original.to)).slice(0, MAX_RECIPIENTS),
    };
  }
  const ses = parseSesNotification(parts.text);
  if (ses && ses.recipients.length > 0)
    return { ...bounce, kind: ses.kind, format: 'ses-json', recipients: ses.recipients };
  const lines = reportLines([parts.text, ...parts.attachedTexts].join('\n'));
  // Broken MIME can leave the RFC 3464 fields in the text.
  const statusTexts =
    parts.deliveryStatus.length > 0
      ? parts.deliveryStatus
      : /^final-recipient\s*:/im.test(parts.text)
        ? [parts.text]
        : [];
  if (statusTexts.length > 0) {
    const recipients = dsnRecipients(statusTexts, lines);
    if (recipients.length > 0) return { ...bounce, kind: 'dsn', format: 'rfc3464', recipients };
  }
  if (isUnsubscribeRequest(parts) && parts.from) {
    return {
      ...bounce,
      kind: 'arf',
      format: 'unsubscribe',
      recipients: [{ recipient: parts.from, diagnostic: 'unsubscribe request', feedbackType: 'opt-out' }],
    };
  }
  const daemon =
    DAEMON_FROM.test(parts.from) || DAEMON_NAME.test(parts.fromName) || parts.headers.has('x-failed-recipients');
  const head = lines.join('\n').slice(0, 4000);
  const looksBounce = daemon || (BOUNCE_SUBJECT.test(parts.subject) && BOUNCE_BODY.test(head));
  if (!looksBounce && isAutoReply(parts)) {
    return {
      ...bounce,
      kind: 'auto_reply',
      format: 'rfc3834',
      recipients: parts.from ? [{ recipient: parts.from, diagnostic: parts.subject }] : [],
    };
  }
  if (!looksBounce && !(BOUNCE_SUBJECT.test(parts.subject) || BOUNCE_BODY.test(head))) return bounce;
  const recipients = textRecipients(parts, lines, exclude, original.to);
  if (recipients.length === 0 && !looksBounce) return bounce;
  return { ...bounce, kind: 'dsn', format: 'text', recipients };
}

function dsnRecipients(reports: string[], lines: string[]): ParsedRecipient[] {
  const groups: FieldGroup[] = [];
  for (const report of reports) {
    if (groups.length >= MAX_RECIPIENTS) break;
    for (const group of parseFieldGroups(report))
      if (groups.length < MAX_RECIPIENTS && (group.has('final-recipient') || group.has('original-recipient')))
        groups.push(group);
  }
  const addresses = groups.map(
    (g) =>
      cleanAddress(stripTypePrefix(firstField(g, 'final-recipient'))) ??
      cleanAddress(stripTypePrefix(firstField(g, 'original-recipient'))),
  );
  const known = addresses.filter((a): a is string => !!a);
  const blocks = new Map(blocksFor(lines, known).map((b) => [b.recipient, b.diagnostic]));
  const out: ParsedRecipient[] = [];
  groups.forEach((group, i) => {
    const recipient = addresses[i];
    if (!recipient) return;
    const rawDiagnostic = firstField(group, 'diagnostic-code') ?? '';
    // Only SMTP diagnostics lose their type: "X-Unix; 71" is a local mailer's exit status.
    const diagnosticCode = /^\s*smtp\s*;/i.test(rawDiagnostic)
      ? (stripTypePrefix(rawDiagnostic) ?? '')
      : rawDiagnostic.trim();
    const block = blocks.get(recipient) ?? '';
    const diagnostic = /[a-z]{3,}/i.test(diagnosticCode.replace(/\b\d[\d.]*\b/g, ''))
      ? diagnosticCode
      : `${diagnosticCode}\n${block}`.trim();
    const fromCode = replyFacts(diagnosticCode);
    const fromBlock = replyFacts(block);
    const parsed: ParsedRecipient = { recipient, diagnostic };
    const reported = /^[245]\.\d{1,3}\.\d{1,3}/.exec(firstField(group, 'status') ?? '')?.[0];
    // The remote host's own status (in its reply) is more precise than the reporting MTA's summary,
    // unless it is generic (x.0.0) or of another class than the report. A report without a
    // Diagnostic-Code quotes that reply in its text part only (OpenSMTPD).
    const remote = rawDiagnostic ? fromCode.status : fromBlock.status;
    const refined =
      remote && !/^\d\.0\.0$/.test(remote) && (!reported || reported[0] === remote[0]) ? remote : undefined;
    const status = refined ?? reported ?? fromBlock.status;
    if (status) parsed.status = status;
    const code = fromCode.code ?? fromBlock.code;
    if (code) parsed.replyCode = code;
    const action = firstField(group, 'action')
      ?.toLowerCase()
      .trim()
      .split(/\s/)[0]
      ?.replace(/^deliverable$/, 'delivered');
    if (action && ['failed', 'delayed', 'delivered', 'relayed', 'expanded'].includes(action))
      parsed.action = action as DsnAction;
    // "dns; mx.example.jp. (192.0.2.1, the server for the domain example.jp.)" (Gmail): the name only.
    const remoteMta = stripTypePrefix(firstField(group, 'remote-mta'))?.split(/[\s(]/)[0]?.replace(/\.$/, '');
    const mxHost =
      remoteMta && /[a-z]/i.test(remoteMta) ? remoteMta.toLowerCase() : (fromBlock.mxHost ?? fromCode.mxHost);
    if (mxHost) parsed.remoteMta = mxHost;
    const phase = fromCode.phase ?? fromBlock.phase;
    if (phase) parsed.phase = phase;
    out.push(parsed);
  });
  return out;
}

function textRecipients(
  parts: MessageParts,
  lines: string[],
  exclude: Set<string>,
  originalTo: string | undefined,
): ParsedRecipient[] {
  const failedHeader = (parts.headers.get('x-failed-recipients') ?? [])
    .flatMap((v) => v.split(','))
    .map(cleanAddress)
    .filter((a): a is string => !!a);
  // As many as findRecipients reads from the text: each name costs a diagnostic block and a
  // classification, and the header is the sender's to fill (90,000 names took two minutes).
  let recipients =
    failedHeader.length > 0 ? [...new Set(failedHeader)].slice(0, MAX_RECIPIENTS) : findRecipients(lines, exclude);
  if (recipients.length === 0 && originalTo && !exclude.has(originalTo)) recipients = [originalTo];
  // No address could be told apart (the failed one is also the report's own To): the whole
  // text is the diagnostic, and the reply it quotes is still read.
  if (recipients.length === 0)
    return [toRecipient({ recipient: '', diagnostic: lines.join('\n').trim().slice(0, 4000) })];
  return blocksFor(lines, recipients).map(toRecipient);
}

function toRecipient(block: TextBlock): ParsedRecipient {
  const facts = replyFacts(block.diagnostic);
  const parsed: ParsedRecipient = { recipient: block.recipient, diagnostic: block.diagnostic, action: 'failed' };
  if (facts.status) parsed.status = facts.status;
  if (facts.code) parsed.replyCode = facts.code;
  if (facts.phase) parsed.phase = facts.phase;
  if (facts.mxHost) parsed.remoteMta = facts.mxHost;
  return parsed;
}

function isAutoReply(parts: MessageParts): boolean {
  const submitted = headerValue(parts, 'auto-submitted')?.toLowerCase() ?? '';
  if (submitted.startsWith('auto-replied')) return true;
  if (parts.headers.has('x-autoreply') || parts.headers.has('x-autorespond') || parts.headers.has('x-vacation'))
    return true;
  if (/auto_reply/i.test(headerValue(parts, 'precedence') ?? '')) return true;
  return AUTO_REPLY_SUBJECT.test(parts.subject);
}

/** Where the bounce was delivered: the VERP address is one of these. */
function envelopeRecipients(parts: MessageParts): string[] {
  return ['delivered-to', 'x-original-to', 'envelope-to', 'x-envelope-to']
    .flatMap((name) => parts.headers.get(name) ?? [])
    .map(cleanAddress)
    .filter((a): a is string => !!a);
}

function attachLogId(bounce: ParsedBounce, parts: MessageParts, prefix: string): void {
  for (const address of [...envelopeRecipients(parts), ...parts.to]) {
    const id = parseVerpAddress(address, prefix);
    if (id) {
      bounce.logId = id;
      bounce.logIdSource = 'verp';
      return;
    }
  }
  if (bounce.original.heraldLogId) {
    bounce.logId = bounce.original.heraldLogId;
    bounce.logIdSource = 'header';
  }
}
