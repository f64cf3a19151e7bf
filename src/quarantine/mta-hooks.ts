import type { ClassifierSource } from '../bounce/qualification-classifier.ts';
import type { QualificationRecorder } from '../bounce/qualification-recorder.ts';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import { defaultVerdict } from '../mta/default-verdict.ts';
import type { Outcome } from '../mta/outcome.ts';
import { formatSmtpReply, type ClassifyReply, type SmtpReply, type Verdict } from '../mta/smtp-reply.ts';
import type { Store } from '../store/database.ts';
import { logsForOutcomes } from '../store/qualification-queries.ts';
import { applyAddressEvents } from '../store/quarantine-queries.ts';
import type { AddressEvent, QuarantineSettings } from './types.ts';

// What the MTA is given by the bounce and quarantine side (through createMta's options):
// - `classify`: the rule-pack classifier in the MTA's ClassifyReply shape. The verdict also
//   carries the rule id and pack version (extra fields) for the timeline and the qualification table.
// - `onOutcomes`: after each committed batch, failures become address events (one read of the
//   batch's logs, one write transaction) and unmatched replies go to the qualification recorder.

/** The MTA's verdict plus what the rule pack said; `qualifiedType` is the pack's own type. */
export interface QualifiedVerdict extends Verdict {
  ruleId: string | null;
  packVersion: string | null;
  qualifiedType: 'hard' | 'soft' | 'ignored';
}

export interface MtaQualification {
  classify: ClassifyReply;
  onOutcomes(outcomes: readonly Outcome[]): void;
  /** Resolves once every outcome handed over so far is applied to the quarantine. */
  flush(): Promise<void>;
}

export interface MtaQualificationOptions {
  store: Store;
  classifiers: ClassifierSource;
  recorder: QualificationRecorder;
  settings: QuarantineSettings;
  clock: Clock;
  logger?: Logger;
  /** Outcomes held while the database is unreachable, at most (older ones are dropped with an error log). */
  maxPending?: number;
}

export function isQualifiedVerdict(verdict: Verdict): verdict is QualifiedVerdict {
  return 'qualifiedType' in verdict;
}

export function createMtaQualification(options: MtaQualificationOptions): MtaQualification {
  const logger = options.logger ?? silentLogger;
  const maxPending = options.maxPending ?? 100_000;
  let pending: Array<Extract<Outcome, { kind: 'failed' | 'deferred' }>> = [];
  let chain: Promise<void> = Promise.resolve();
  let scheduled = false;

  const classify: ClassifyReply = (reply: SmtpReply): QualifiedVerdict => {
    // Failures on our side of the wire (DNS, TCP, timeouts) have no reply text for rules to read.
    if (reply.code === null) {
      const local = defaultVerdict(reply);
      return { ...local, ruleId: `local.${reply.local ?? 'unknown'}`, packVersion: null, qualifiedType: local.type };
    }
    const verdict = options.classifiers.current().classifyReply({
      code: reply.code,
      ...(reply.enhanced !== null && { enhancedStatus: reply.enhanced }),
      text: reply.text,
    });
    // `ignored` failures are retried like soft ones by the MTA; the log keeps the pack's type.
    return { type: verdict.type, reason: verdict.reason, category: verdict.category, ruleId: verdict.ruleId, packVersion: verdict.packVersion, qualifiedType: verdict.type };
  };

  async function apply(): Promise<void> {
    scheduled = false;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    try {
      const logs = await logsForOutcomes(options.store, [...new Set(batch.map((o) => o.logId))]);
      const events: AddressEvent[] = [];
      for (const outcome of batch) {
        // A soft failure past validity carries reason `expired` (about the delivery); the address
        // is judged on the reply itself, so it is qualified again (pure, cheap).
        const verdict = isQualifiedVerdict(outcome.verdict) || outcome.reply.local === 'expired' ? outcome.verdict : classify(outcome.reply);
        const qualified = isQualifiedVerdict(verdict) ? verdict : undefined;
        if (qualified && qualified.ruleId === null && outcome.reply.code !== null) {
          options.recorder.add({ source: 'smtp', code: outcome.reply.code, enhancedStatus: outcome.reply.enhanced, text: outcome.reply.text, logId: outcome.logId, at: outcome.at });
        }
        // Expired before any new attempt, or our own template failing: nothing was said about the address.
        if (outcome.reply.local === 'expired' || outcome.reply.local === 'content_error') continue;
        const log = logs.get(outcome.logId);
        if (!log) continue;
        events.push({
          email: log.email,
          at: outcome.at,
          source: 'smtp',
          deliveryId: log.deliveryId,
          deliveryLogId: outcome.logId,
          replyText: formatSmtpReply(outcome.reply),
          verdict: {
            category: verdict.category,
            reason: verdict.reason,
            type: qualified?.qualifiedType ?? verdict.type,
            ruleId: qualified?.ruleId ?? null,
            packVersion: qualified?.packVersion ?? null,
          },
        });
      }
      if (events.length > 0) await applyAddressEvents(options.store, events, options.settings, options.clock.now());
    } catch (error) {
      logger.error({ err: describeError(error), outcomes: batch.length }, 'updating the quarantine from MTA outcomes failed; will retry');
      pending = [...batch, ...pending].slice(-maxPending);
    }
  }

  return {
    classify,
    onOutcomes(outcomes) {
      for (const outcome of outcomes) if (outcome.kind === 'failed' || outcome.kind === 'deferred') pending.push(outcome);
      if (pending.length > maxPending) {
        logger.error({ dropped: pending.length - maxPending }, 'too many MTA outcomes waiting for the quarantine; dropping the oldest');
        pending = pending.slice(-maxPending);
      }
      if (!scheduled && pending.length > 0) {
        scheduled = true;
        chain = chain.then(apply);
      }
    },
    flush() {
      if (pending.length > 0 && !scheduled) {
        scheduled = true;
        chain = chain.then(apply);
      }
      return chain;
    },
  };
}
