import type { QuarantineSettings, AddressEvent } from '../quarantine/types.ts';
import type { Store } from '../store/database.ts';
import { countInbound, failLogFromBounce, findLogForBounce, storeInboundSample } from '../store/qualification-queries.ts';
import { applyAddressEvents } from '../store/quarantine-queries.ts';
import type { BounceClassifier } from './classifier.ts';
import { classifyBounce, type RecipientVerdict } from './classify-bounce.ts';
import { parseBounceMessage } from './parse-bounce.ts';
import type { ParsedBounce } from './parsed-bounce.ts';
import type { QualificationRecorder } from './qualification-recorder.ts';

// One message received by the inbound role: parse (RFC 3464 / 5965 / 3834 and the text formats),
// classify, find the delivery log (VERP recipient of the envelope, else the VERP address or
// X-Herald-Log-Id in the message), update the log and the quarantine. What cannot be used is
// counted and kept as a (truncated) sample for the operator. Broken I/O throws (the server then
// answers 451 so the sender retries); bad input never does.

export interface InboundMessage {
  /** The message, or its first bytes when `size` is over the limit. */
  raw: Uint8Array;
  size: number;
  tooLarge: boolean;
  mailFrom: string | null;
  rcptTo: string[];
  /** Log ids from the envelope's VERP recipients, in RCPT order. */
  envelopeLogIds: string[];
  remoteAddress: string | null;
  receivedAt: number;
}

export type InboundOutcome =
  | 'hard'
  | 'soft'
  | 'auto_reply'
  | 'complaint'
  | 'unsubscribe'
  | 'delivered'
  | 'too_large'
  | 'unparseable'
  | 'not_bounce'
  | 'no_log_id'
  | 'unknown_log'
  | 'no_recipient';

export interface InboundResult {
  outcome: InboundOutcome;
  logId: number | null;
  /** The log went from sent/pending to failed. */
  logFailed: boolean;
  category: string | null;
}

export interface InboundDeps {
  store: Store;
  classifier: () => BounceClassifier;
  recorder: QualificationRecorder;
  settings: QuarantineSettings;
  verpPrefix: string;
  sampleBytes: number;
  keepSamples: number;
}

/** Outcomes kept as samples: the operator needs to see those messages. */
const SAMPLED = new Set<InboundOutcome>(['too_large', 'unparseable', 'not_bounce', 'no_log_id', 'unknown_log', 'no_recipient']);

export async function processInboundMessage(deps: InboundDeps, message: InboundMessage): Promise<InboundResult> {
  const result = await decide(deps, message);
  await countInbound(deps.store, ['received', result.outcome], message.receivedAt);
  return result;
}

async function decide(deps: InboundDeps, message: InboundMessage): Promise<InboundResult> {
  const none = (outcome: InboundOutcome, detail: string, logId: number | null = null): Promise<InboundResult> => sample(deps, message, outcome, detail).then(() => ({ outcome, logId, logFailed: false, category: null }));
  if (message.tooLarge) return none('too_large', `message of ${message.size} bytes or more is over the limit`);

  const parsed = await parseBounceMessage(message.raw, { verpPrefix: deps.verpPrefix });
  if (parsed.kind === 'unparseable') return none('unparseable', parsed.error ?? 'unparseable');
  if (parsed.kind === 'not_bounce') return none('not_bounce', `not a delivery report, feedback report or auto-reply (subject: ${parsed.subject ?? ''})`);

  // Herald's log ids are integers; a VERP-looking address with anything else is not ours.
  const candidates = [...message.envelopeLogIds, parsed.logId].filter((id): id is string => id !== undefined);
  const usable = candidates.find((id) => /^\d{1,15}$/.test(id));
  const logId = usable === undefined ? null : Number(usable);
  const rawId = candidates[0];
  if (logId === null) return none('no_log_id', `${parsed.kind}/${parsed.format}: no VERP address or X-Herald-Log-Id${rawId ? ` (got "${rawId}")` : ''}`);
  const log = await findLogForBounce(deps.store, logId);
  if (!log) return none('unknown_log', `${parsed.kind}/${parsed.format} for delivery log ${logId}, which does not exist (purged, or not ours)`, logId);

  const verdicts = classifyBounce(parsed, deps.classifier());
  const chosen = verdicts.find((v) => v.recipient.recipient === log.email) ?? verdicts[0];
  if (!chosen) return none('no_recipient', `${parsed.kind}/${parsed.format}: no recipient in the report`, logId);
  return applyVerdict(deps, message, parsed, log, chosen);
}

async function applyVerdict(
  deps: InboundDeps,
  message: InboundMessage,
  parsed: ParsedBounce,
  log: { id: number; deliveryId: number; email: string; status: string },
  chosen: RecipientVerdict,
): Promise<InboundResult> {
  const { recipient, verdict } = chosen;
  const at = message.receivedAt;
  const base = { email: log.email, at, deliveryId: log.deliveryId, deliveryLogId: log.id, replyText: recipient.diagnostic.slice(0, 2_000) };
  const eventVerdict = { category: verdict.category, reason: verdict.reason, type: verdict.type, ruleId: verdict.ruleId, packVersion: verdict.packVersion };
  const done = (outcome: InboundOutcome, logFailed = false): InboundResult => ({ outcome, logId: log.id, logFailed, category: verdict.category });

  if (parsed.kind === 'arf') {
    // RFC 5965 Feedback-Type opt-out and one-click unsubscribe mails are unsubscribes; the rest are complaints.
    const source = recipient.feedbackType === 'opt-out' || parsed.format === 'unsubscribe' ? 'unsubscribe' : 'complaint';
    await applyAddressEvents(deps.store, [{ ...base, source, verdict: eventVerdict, note: recipient.feedbackType ? `feedback-type ${recipient.feedbackType}` : parsed.format }], deps.settings, at);
    return done(source);
  }
  if (parsed.kind === 'auto_reply') {
    await applyAddressEvents(deps.store, [{ ...base, source: 'bounce', verdict: eventVerdict, note: 'auto-reply' }], deps.settings, at);
    return done('auto_reply');
  }
  if (verdict.category === 'delivered') return done('delivered');

  if (verdict.ruleId === null) {
    deps.recorder.add({ source: 'bounce', code: recipient.replyCode ?? null, enhancedStatus: recipient.status ?? null, text: recipient.diagnostic, logId: log.id, at });
  }
  // A "delayed" DSN (RFC 3464 Action: delayed) is a warning: the remote MTA still retries.
  const hard = verdict.type === 'hard' && recipient.action !== 'delayed';
  let logFailed = false;
  if (hard) {
    logFailed = await failLogFromBounce(deps.store, log.id, {
      code: recipient.replyCode ?? null,
      enhancedStatus: recipient.status ?? null,
      text: recipient.diagnostic,
      type: 'hard',
      reason: verdict.reason,
      category: verdict.category,
      at,
    });
  }
  const event: AddressEvent = { ...base, source: 'bounce', verdict: hard ? eventVerdict : { ...eventVerdict, type: verdict.type === 'hard' ? 'soft' : verdict.type }, note: `${parsed.format} report${recipient.action ? `, action ${recipient.action}` : ''}` };
  await applyAddressEvents(deps.store, [event], deps.settings, at);
  return done(hard ? 'hard' : 'soft', logFailed);
}

async function sample(deps: InboundDeps, message: InboundMessage, problem: InboundOutcome, detail: string): Promise<void> {
  if (!SAMPLED.has(problem)) return;
  await storeInboundSample(
    deps.store,
    {
      receivedAt: message.receivedAt,
      problem,
      detail,
      remoteAddress: message.remoteAddress,
      mailFrom: message.mailFrom,
      rcptTo: message.rcptTo.join(', '),
      size: message.size,
      raw: message.raw.subarray(0, deps.sampleBytes),
    },
    deps.keepSamples,
  );
}
