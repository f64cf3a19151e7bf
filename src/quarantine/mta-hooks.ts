import type { QualificationRecorder } from '../bounce/qualification-recorder.ts';
import { formatSmtpReply } from '../bounce/smtp-reply.ts';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { DeferredOutcome, FailedOutcome, Outcome } from '../mta/outcome.ts';
import type { Store } from '../store/database.ts';
import { applyAddressEventsWithin, releaseAddresses } from './address-events.ts';
import {
  MassRejectionGuard,
  type AnsweredMessage,
  type MassRejectionSettings,
  type MassRejectionTrip,
} from './mass-rejection.ts';
import type { AddressEvent, QuarantineSettings } from './types.ts';

// What the quarantine does with the MTA's outcomes. In the transaction that writes a batch of
// outcomes (createMta's `outcomeEffects`), failures become address events: an outcome and the
// address events it causes commit together, so a crash loses or doubles neither. The mass-rejection
// guard counts each answer as it arrives (`onFinished`): a trip suspends the domain at once, and
// from then on its hard replies are withheld. What the window quarantined before is released once
// the outcome that tripped it is committed (`onOutcomes`): outcomes are written in order, so every
// earlier quarantine is visible by then. After the commit, replies no rule matched go to the
// qualification recorder. The outcome carries the
// address, the delivery and the verdict (rule id, pack version) the reply was qualified with
// (src/bounce/reply-classifier.ts): nothing is re-read.

export interface MtaQualification {
  /** As each SMTP transaction ends, before its outcome is written: the mass-rejection guard counts it. */
  onFinished(outcome: Outcome): void;
  /** Applies the address events of the batch's failures inside the outcomes' transaction `trx`. */
  applyWithin(trx: Store, outcomes: readonly Outcome[]): Promise<void>;
  /** After the batch is committed: releases what a trip made suspect, unmatched replies to the qualification table. */
  onOutcomes(outcomes: readonly Outcome[]): void;
  /** Resolves once the unmatched replies handed over so far are written. */
  flush(): Promise<void>;
}

export interface MtaQualificationOptions {
  recorder: QualificationRecorder;
  settings: QuarantineSettings;
  clock: Clock;
  /** The mass-rejection guard (mass-rejection.ts); absent = every hard reply is applied. */
  massRejection?: MassRejectionOptions;
}

export interface MassRejectionOptions {
  settings: MassRejectionSettings;
  /** Where the addresses a trip releases are. */
  store: Store;
  logger?: Logger;
  /** Once per trip, as the answer that tripped it arrives (composeMta suspends the domain). */
  onTrip?(trip: MassRejectionTrip): void;
}

type FailureOutcome = DeferredOutcome | FailedOutcome;

function isFailure(outcome: Outcome): outcome is FailureOutcome {
  return outcome.kind === 'failed' || outcome.kind === 'deferred';
}

/** The address event a failure leaves; none when nothing was said about the address. */
export function addressEventOf(outcome: FailureOutcome, trip?: MassRejectionTrip): AddressEvent | undefined {
  // Expired before any new attempt, our own template failing, or our message too large for the
  // server's declared SIZE: nothing was said about the address.
  const local = outcome.reply.local;
  if (local === 'expired' || local === 'content_error' || local === 'message_too_large') return undefined;
  const event: AddressEvent = {
    email: outcome.email,
    at: outcome.at,
    source: 'smtp',
    deliveryId: outcome.deliveryId,
    deliveryLogId: outcome.logId,
    replyText: formatSmtpReply(outcome.reply),
    verdict: outcome.verdict,
  };
  if (trip && outcome.verdict.type === 'hard')
    return { ...event, withheld: true, note: `not applied: ${describeTrip(trip)}` };
  return event;
}

function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1).toLowerCase();
}

/** The message as the guard counts it; none when the receiving server did not answer (a local DNS or connection failure says nothing of it). */
function answeredMessage(outcome: Outcome): AnsweredMessage | undefined {
  if (outcome.kind === 'released' || outcome.reply.code === null) return undefined;
  const hard = outcome.kind === 'failed' && !outcome.expired && outcome.verdict.type === 'hard';
  return { domain: domainOf(outcome.email), hard, ...(hard && { reply: formatSmtpReply(outcome.reply) }) };
}

function describeTrip(trip: MassRejectionTrip): string {
  const minutes = Math.round((trip.since - trip.windowStart) / 60_000);
  return `mass rejection: ${trip.domain} answered ${trip.hard} of ${trip.messages} messages with a hard failure in ${minutes} min`;
}

export function createMtaQualification(options: MtaQualificationOptions): MtaQualification {
  const guarded = options.massRejection;
  const guard = guarded ? new MassRejectionGuard(guarded.settings) : undefined;
  const releases = new Set<Promise<void>>();
  /** Trips waiting for the outcome that caused them to be committed. */
  const releaseAfter = new Map<Outcome, MassRejectionTrip>();

  // What the window quarantined before the domain tripped was the domain's doing: released, as
  // `herald quarantine release --domain --since` would (operator decisions and denylists untouched).
  function release(trip: MassRejectionTrip): void {
    const { store, logger } = guarded!;
    const now = options.clock.now();
    const note = `released: ${describeTrip(trip)}`;
    const done = releaseAddresses(
      store,
      { domain: trip.domain, since: trip.windowStart, note, source: 'schedule' },
      options.settings,
      now,
    )
      .then((result) =>
        logger?.warn(
          { event: 'quarantine.mass_rejection_released', domain: trip.domain, released: result.released },
          `${result.released} addresses of ${trip.domain} released after a mass rejection`,
        ),
      )
      .catch((error: unknown) =>
        logger?.error(
          { err: describeError(error), domain: trip.domain },
          `releasing the addresses of ${trip.domain} after a mass rejection failed; run herald quarantine release --domain ${trip.domain}`,
        ),
      )
      .finally(() => releases.delete(done));
    releases.add(done);
  }

  return {
    onFinished(outcome) {
      if (!guard) return;
      const answered = answeredMessage(outcome);
      if (!answered) return;
      for (const trip of guard.record([answered], options.clock.now())) {
        guarded!.logger?.warn(
          { event: 'quarantine.mass_rejection', ...trip },
          `${describeTrip(trip)}: its hard replies are not applied to addresses until ${new Date(trip.until).toISOString()}`,
        );
        guarded!.onTrip?.(trip);
        releaseAfter.set(outcome, trip);
      }
    },
    async applyWithin(trx, outcomes) {
      const events: AddressEvent[] = [];
      const now = options.clock.now();
      for (const outcome of outcomes) {
        if (!isFailure(outcome)) continue;
        const event = addressEventOf(outcome, guard?.trippedFor(domainOf(outcome.email), now));
        if (event) events.push(event);
      }
      if (events.length > 0) await applyAddressEventsWithin(trx, events, options.settings, now);
    },
    onOutcomes(outcomes) {
      for (const outcome of outcomes) {
        const trip = releaseAfter.get(outcome);
        if (trip) {
          releaseAfter.delete(outcome);
          release(trip);
        }
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
    async flush() {
      await Promise.all([...releases]);
      await options.recorder.flush();
    },
  };
}
