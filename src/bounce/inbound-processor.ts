import type { QuarantineSettings, AddressEvent } from '../quarantine/types.ts';
import { inTransaction, type Store } from '../store/database.ts';
import {
  claimInboundMessage,
  countInbound,
  failLogFromBounce,
  findLogForBounce,
  storeInboundSample,
} from './qualification-store.ts';
import type { BounceClassifier } from './classifier.ts';
import { classifyBounce, type RecipientVerdict } from './classify-bounce.ts';
import { parseBounceMessage } from './parse-bounce.ts';
import type { ParsedBounce } from './parsed-bounce.ts';
import type { QualificationRecorder } from './qualification-recorder.ts';
import { applyAddressEventsWithin } from '../quarantine/address-events.ts';
import { logEventTypes } from '../quarantine/quarantine-store.ts';
import { inboundMessageIdentity } from './inbound-identity.ts';
import type { VerpSigner } from './verp.ts';

// One message received by the inbound role: parse (RFC 3464 / 5965 / 3834 and the text formats),
// classify, find the delivery log (signed VERP recipient of the envelope, else a signed VERP
// address quoted in the message), update the log and the quarantine. A report is applied only when
// it proves itself: a signed VERP address (an unsigned X-Herald-Log-Id names a sequential id anyone
// can guess) and a recipient (DSN Final-/Original-Recipient, ARF Original-Rcpt-To or quoted To)
// equal to the log's address. Mail to postmaster@/abuse@ and plain "unsubscribe" mails (the mailto:
// path needs the unsubscribe token, as /u/ does) are never applied. What cannot be used is counted
// and kept as a (truncated) sample for the operator. Broken I/O throws (the server then answers 451
// so the sender retries); bad input never does.
// Everything one message changes (its identity, the log, the address events, the sample, the
// counters) commits in one transaction: a failed write leaves nothing, and a retried or resent
// message is recognised by its identity (inbound-identity.ts) and applied once.

export interface InboundMessage {
  /** The message, or its first bytes when `size` is over the limit. */
  raw: Uint8Array;
  size: number;
  tooLarge: boolean;
  mailFrom: string | null;
  rcptTo: string[];
  /** Log ids from the envelope's signed VERP recipients (verified at RCPT), in RCPT order. */
  envelopeLogIds: string[];
  /** Sent only to postmaster@/abuse@ of the bounce domain: kept for review, never applied. */
  reviewOnly?: boolean;
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
  | 'no_recipient'
  | 'for_review'
  | 'unverified_log_id'
  | 'recipient_mismatch'
  | 'unverified_unsubscribe'
  /** The same message was applied already (a sender's retry): nothing changes. */
  | 'duplicate'
  /** A feedback report that is no complaint (RFC 6430 not-spam, RFC 6591 auth-failure): an event only. */
  | 'feedback_only'
  /** The log has MAX_REPORTS_PER_LOG reports applied already: counted, nothing stored. */
  | 'too_many_reports';

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
  /** Verifies VERP addresses quoted in a report (feedback-loop reports reach feedbackAddress). */
  verp: Pick<VerpSigner, 'verify'>;
  sampleBytes: number;
  keepSamples: number;
  /** Test seam: called after each write of a message's effects; a throw there is a failed write. */
  afterWrite?: (write: InboundWrite) => void | Promise<void>;
}

/** The writes one received message makes. */
export type InboundWrite = 'log' | 'address_events' | 'sample' | 'counters';

/**
 * Bounce reports and auto-replies applied to one delivery log, at most. A log gets one report, a few
 * with delay warnings; each applied one is a timeline row (kept addressEventsDays) and maybe a
 * qualification entry, and anyone sent one message knows its signed VERP address and could send
 * reports for it, each made different, without end. Complaints and unsubscribes count once anyway.
 */
const MAX_REPORTS_PER_LOG = 5;

/** Outcomes kept as samples: the operator needs to see those messages. */
const SAMPLED = new Set<InboundOutcome>([
  'too_large',
  'unparseable',
  'not_bounce',
  'no_log_id',
  'unknown_log',
  'no_recipient',
  'for_review',
  'unverified_log_id',
  'recipient_mismatch',
  'unverified_unsubscribe',
]);

export async function processInboundMessage(deps: InboundDeps, message: InboundMessage): Promise<InboundResult> {
  // Parsing is CPU work: done before the transaction, so the write lock is held for writes only.
  const parsed =
    message.tooLarge || message.reviewOnly
      ? undefined
      : await parseBounceMessage(message.raw, { verpPrefix: deps.verpPrefix });
  const identity = inboundMessageIdentity({ ...message, messageId: parsed?.messageId });
  const unmatched: UnmatchedBounceReply[] = [];
  const result = await inTransaction(deps.store, async (trx) => {
    if (!(await claimInboundMessage(trx, identity, message.receivedAt))) {
      await countInbound(trx, ['duplicate'], message.receivedAt);
      await deps.afterWrite?.('counters');
      return { outcome: 'duplicate' as const, logId: null, logFailed: false, category: null };
    }
    const decided = await decide({ ...deps, store: trx }, message, parsed, unmatched);
    await countInbound(trx, ['received', decided.outcome], message.receivedAt);
    await deps.afterWrite?.('counters');
    return decided;
  });
  // The recorder holds replies in memory until its flush: fed only once the message is committed.
  for (const reply of unmatched) deps.recorder.add(reply);
  return result;
}

type UnmatchedBounceReply = Parameters<QualificationRecorder['add']>[0];

async function decide(
  deps: InboundDeps,
  message: InboundMessage,
  parsed: ParsedBounce | undefined,
  unmatched: UnmatchedBounceReply[],
): Promise<InboundResult> {
  // Mail to postmaster@ / abuse@ is sampled as for_review whatever it is: those samples are kept in
  // a pool of their own (qualification-store.ts), so anyone's mail there cannot push out the others.
  const none = (outcome: InboundOutcome, detail: string, logId: number | null = null): Promise<InboundResult> =>
    sample(deps, message, message.reviewOnly ? 'for_review' : outcome, detail).then(() => ({
      outcome,
      logId,
      logFailed: false,
      category: null,
    }));
  if (message.tooLarge) return none('too_large', `message of ${message.size} bytes or more is over the limit`);
  if (message.reviewOnly || !parsed)
    return none('for_review', 'sent to postmaster@ or abuse@ of the bounce domain: kept for review, never applied');

  if (parsed.kind === 'unparseable') return none('unparseable', parsed.error ?? 'unparseable');
  if (parsed.kind === 'not_bounce')
    return none(
      'not_bounce',
      `not a delivery report, feedback report or auto-reply (subject: ${parsed.subject ?? ''})`,
    );

  // The envelope's VERP ids were verified at RCPT; a VERP address quoted in the message must be
  // signed too. X-Herald-Log-Id alone proves nothing (log ids are sequential).
  const quoted =
    parsed.logIdSource === 'verp' && parsed.logId ? deps.verp.verify(parsed.logId, message.receivedAt) : undefined;
  const verified = message.envelopeLogIds.find((id) => /^\d{1,15}$/.test(id));
  const logId = verified !== undefined ? Number(verified) : (quoted ?? null);
  if (logId === null) {
    if (parsed.logId)
      return none(
        'unverified_log_id',
        `${parsed.kind}/${parsed.format}: log id "${parsed.logId}" from ${parsed.logIdSource === 'verp' ? 'an unsigned or badly signed VERP address' : 'X-Herald-Log-Id'} in the message, not proven`,
      );
    return none('no_log_id', `${parsed.kind}/${parsed.format}: no signed VERP address`);
  }
  const log = await findLogForBounce(deps.store, logId);
  if (!log)
    return none(
      'unknown_log',
      `${parsed.kind}/${parsed.format} for delivery log ${logId}, which does not exist (purged, or not ours)`,
      logId,
    );

  const verdicts = classifyBounce(parsed, deps.classifier());
  if (verdicts.length === 0)
    return none('no_recipient', `${parsed.kind}/${parsed.format}: no recipient in the report`, logId);
  const email = log.email.toLowerCase();
  const chosen = verdicts.find((v) => v.recipient.recipient.toLowerCase() === email);
  if (!chosen)
    return none(
      'recipient_mismatch',
      `${parsed.kind}/${parsed.format} for delivery log ${logId} names ${verdicts
        .map((v) => `"${v.recipient.recipient}"`)
        .join(', ')
        .slice(0, 300)}, not the log's address: not applied`,
      logId,
    );
  if (parsed.format === 'unsubscribe')
    return none(
      'unverified_unsubscribe',
      `unsubscribe request mailed to delivery log ${logId}'s bounce address: only unsubscribe+TOKEN@ (List-Unsubscribe) or /u/ unsubscribe`,
      logId,
    );
  if (!(parsed.kind === 'arf' && feedbackEffect(parsed, chosen.recipient) !== 'event')) {
    const applied = await logEventTypes(deps.store, {
      email: log.email,
      logId,
      source: 'bounce',
      limit: MAX_REPORTS_PER_LOG + 1,
    });
    // Delay warnings (Exim sends one a day) never keep the final failure from failing the log, once.
    const failsLog = parsed.kind === 'dsn' && isHardFailure(chosen) && !applied.includes('hard');
    if (applied.length >= MAX_REPORTS_PER_LOG && !failsLog)
      return none('too_many_reports', `delivery log ${logId} has ${applied.length} reports applied`, logId);
  }
  return applyVerdict(deps, message, parsed, log, chosen, unmatched);
}

async function applyVerdict(
  deps: InboundDeps,
  message: InboundMessage,
  parsed: ParsedBounce,
  log: { id: number; deliveryId: number; email: string; status: string },
  chosen: RecipientVerdict,
  unmatched: UnmatchedBounceReply[],
): Promise<InboundResult> {
  const { recipient, verdict } = chosen;
  const diagnostic = storable(recipient.diagnostic);
  const at = message.receivedAt;
  const base = {
    email: log.email,
    at,
    deliveryId: log.deliveryId,
    deliveryLogId: log.id,
    replyText: diagnostic.slice(0, 2_000),
  };
  const eventVerdict = {
    category: verdict.category,
    reason: verdict.reason,
    type: verdict.type,
    ruleId: verdict.ruleId,
    packVersion: verdict.packVersion,
  };
  const done = (outcome: InboundOutcome, logFailed = false): InboundResult => ({
    outcome,
    logId: log.id,
    logFailed,
    category: verdict.category,
  });

  if (parsed.kind === 'arf') {
    const effect = feedbackEffect(parsed, recipient);
    if (effect === 'event') {
      await applyAddressEventsWithin(
        deps.store,
        [
          {
            ...base,
            source: 'bounce',
            verdict: { ...eventVerdict, type: 'ignored' },
            note: storable(`feedback-type ${recipient.feedbackType}`),
          },
        ],
        deps.settings,
        at,
      );
      await deps.afterWrite?.('address_events');
      return done('feedback_only');
    }
    const source = effect;
    await applyAddressEventsWithin(
      deps.store,
      [
        {
          ...base,
          source,
          verdict: eventVerdict,
          note: recipient.feedbackType ? storable(`feedback-type ${recipient.feedbackType}`) : parsed.format,
        },
      ],
      deps.settings,
      at,
    );
    return done(source);
  }
  if (parsed.kind === 'auto_reply') {
    await applyAddressEventsWithin(
      deps.store,
      [{ ...base, source: 'bounce', verdict: eventVerdict, note: 'auto-reply' }],
      deps.settings,
      at,
    );
    return done('auto_reply');
  }
  if (verdict.category === 'delivered') return done('delivered');

  if (verdict.ruleId === null) {
    unmatched.push({
      source: 'bounce',
      code: recipient.replyCode ?? null,
      enhancedStatus: recipient.status ?? null,
      text: diagnostic,
      logId: log.id,
      at,
    });
  }
  const hard = isHardFailure(chosen);
  let logFailed = false;
  if (hard) {
    logFailed = await failLogFromBounce(deps.store, log.id, {
      code: recipient.replyCode ?? null,
      enhancedStatus: recipient.status ?? null,
      text: diagnostic,
      type: 'hard',
      reason: verdict.reason,
      category: verdict.category,
      at,
    });
    await deps.afterWrite?.('log');
  }
  const event: AddressEvent = {
    ...base,
    source: 'bounce',
    verdict: hard ? eventVerdict : { ...eventVerdict, type: verdict.type === 'hard' ? 'soft' : verdict.type },
    note: `${parsed.format} report${recipient.action ? `, action ${recipient.action}` : ''}`,
  };
  await applyAddressEventsWithin(deps.store, [event], deps.settings, at);
  await deps.afterWrite?.('address_events');
  return done(hard ? 'hard' : 'soft', logFailed);
}

/**
 * Text from the message as it can be stored: PostgreSQL keeps no NUL in text, and a report quoting
 * one (or a subject decoding to one) failed its transaction, answered 451 at every retry for days.
 */
function storable(text: string): string {
  return text.replaceAll('\0', '\ufffd');
}

/** A delivery report's hard failure; a "delayed" DSN (RFC 3464 Action: delayed) is a warning: the remote MTA still retries. */
function isHardFailure({ verdict, recipient }: RecipientVerdict): boolean {
  return verdict.type === 'hard' && recipient.action !== 'delayed';
}

/**
 * What a feedback report does to its recipient's address. RFC 5965 opt-out and one-click
 * unsubscribe mails unsubscribe; RFC 6430 not-spam (the recipient wants the mail) and RFC 6591
 * auth-failure (a receiver's SPF/DKIM failure report, a forwarder's) are events only: both
 * denylisted the recipient as complaints. Every other type (abuse, fraud, virus, other) is a complaint.
 */
function feedbackEffect(
  parsed: ParsedBounce,
  recipient: RecipientVerdict['recipient'],
): 'unsubscribe' | 'complaint' | 'event' {
  if (recipient.feedbackType === 'opt-out' || parsed.format === 'unsubscribe') return 'unsubscribe';
  if (recipient.feedbackType === 'not-spam' || recipient.feedbackType === 'auth-failure') return 'event';
  return 'complaint';
}

async function sample(
  deps: InboundDeps,
  message: InboundMessage,
  problem: InboundOutcome,
  detail: string,
): Promise<void> {
  if (!SAMPLED.has(problem)) return;
  await storeInboundSample(
    deps.store,
    {
      receivedAt: message.receivedAt,
      problem,
      detail: storable(detail),
      remoteAddress: message.remoteAddress,
      mailFrom: message.mailFrom === null ? null : storable(message.mailFrom),
      rcptTo: storable(message.rcptTo.join(', ')),
      size: message.size,
      raw: message.raw.subarray(0, deps.sampleBytes),
    },
    deps.keepSamples,
  );
  await deps.afterWrite?.('sample');
}
