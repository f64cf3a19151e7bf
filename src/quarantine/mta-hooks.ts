import type { QualificationRecorder } from '../bounce/qualification-recorder.ts';
import { formatSmtpReply } from '../bounce/smtp-reply.ts';
import type { Clock } from '../common/clock.ts';
import type { DeferredOutcome, FailedOutcome, Outcome } from '../mta/outcome.ts';
import type { Store } from '../store/database.ts';
import { applyAddressEventsWithin } from './address-events.ts';
import type { AddressEvent, QuarantineSettings } from './types.ts';

// What the quarantine does with the MTA's outcomes. In the transaction that writes a batch of
// outcomes (createMta's `outcomeEffects`), failures become address events: an outcome and the
// address events it causes commit together, so a crash loses or doubles neither. After the commit
// (`onOutcomes`), replies no rule matched go to the qualification recorder. The outcome carries the
// address, the delivery and the verdict (rule id, pack version) the reply was qualified with
// (src/bounce/reply-classifier.ts): nothing is re-read.

export interface MtaQualification {
  /** Applies the address events of the batch's failures inside the outcomes' transaction `trx`. */
  applyWithin(trx: Store, outcomes: readonly Outcome[]): Promise<void>;
  /** After the batch is committed: unmatched replies to the qualification table. */
  onOutcomes(outcomes: readonly Outcome[]): void;
  /** Resolves once the unmatched replies handed over so far are written. */
  flush(): Promise<void>;
}

export interface MtaQualificationOptions {
  recorder: QualificationRecorder;
  settings: QuarantineSettings;
  clock: Clock;
}

type FailureOutcome = DeferredOutcome | FailedOutcome;

function isFailure(outcome: Outcome): outcome is FailureOutcome {
  return outcome.kind === 'failed' || outcome.kind === 'deferred';
}

/** The address event a failure leaves; none when nothing was said about the address. */
export function addressEventOf(outcome: FailureOutcome): AddressEvent | undefined {
  // Expired before any new attempt, our own template failing, or our message too large for the
  // server's declared SIZE: nothing was said about the address.
  const local = outcome.reply.local;
  if (local === 'expired' || local === 'content_error' || local === 'message_too_large') return undefined;
  return {
    email: outcome.email,
    at: outcome.at,
    source: 'smtp',
    deliveryId: outcome.deliveryId,
    deliveryLogId: outcome.logId,
    replyText: formatSmtpReply(outcome.reply),
    verdict: outcome.verdict,
  };
}

export function createMtaQualification(options: MtaQualificationOptions): MtaQualification {
  return {
    async applyWithin(trx, outcomes) {
      const events: AddressEvent[] = [];
      for (const outcome of outcomes) {
        const event = isFailure(outcome) ? addressEventOf(outcome) : undefined;
        if (event) events.push(event);
      }
      if (events.length > 0) await applyAddressEventsWithin(trx, events, options.settings, options.clock.now());
    },
    onOutcomes(outcomes) {
      for (const outcome of outcomes) {
        if (!isFailure(outcome) || outcome.verdict.ruleId !== null || outcome.reply.code === null) continue;
        options.recorder.add({
          source: 'smtp',
          code: outcome.reply.code,
          enhancedStatus: outcome.reply.enhanced,
          text: outcome.reply.text,
          logId: outcome.logId,
          at: outcome.at,
        });
      }
    },
    flush: () => options.recorder.flush(),
  };
}
