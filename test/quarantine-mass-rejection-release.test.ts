import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createClassifierSource } from '../src/bounce/qualification-classifier.ts';
import { createQualificationRecorder } from '../src/bounce/qualification-recorder.ts';
import { createReplyClassifier } from '../src/bounce/reply-classifier.ts';
import { parseSmtpReply } from '../src/bounce/smtp-reply.ts';
import { manualClock } from '../src/common/clock.ts';
import type { Outcome } from '../src/mta/outcome.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { DEFAULT_MASS_REJECTION, type MassRejectionTrip } from '../src/quarantine/mass-rejection.ts';
import { createMtaQualification } from '../src/quarantine/mta-hooks.ts';
import { addressTimeline, countAddressesByState } from '../src/quarantine/quarantine-store.ts';
import { DEFAULT_QUARANTINE_SETTINGS } from '../src/quarantine/types.ts';
import { inTransaction } from '../src/store/database.ts';
import { describeEachDialect } from './support/databases.ts';

// The guard counts each answer as its SMTP transaction ends, not once its outcome is committed: a
// domain refusing everyone is suspended at its 50th answer however slow the database writes (CI on
// PostgreSQL sent 282 messages into the wall while the first batches were being written). What the
// window quarantined before the trip is released once the tripping outcome is committed, the order
// the MTA writes in, so a quarantine still being written is not missed.

describeEachDialect('mass-rejection guard: trips on answers, releases after the commit', (context) => {
  it('suspends at the 50th answer, withholds what follows, and releases the earlier quarantines once the trip is written', async () => {
    const store = context.store();
    const clock = manualClock(Date.UTC(2026, 11, 8, 9, 0));
    const classifiers = await createClassifierSource({
      siteRulesFile: join(mkdtempSync(join(tmpdir(), 'herald-guard-')), 'bounce.yaml'),
      checkMs: 0,
    });
    const classify = createReplyClassifier(() => classifiers.current());
    const trips: MassRejectionTrip[] = [];
    const hooks = createMtaQualification({
      recorder: createQualificationRecorder({ store, now: clock.now, flushMs: 60_000 }),
      settings: DEFAULT_QUARANTINE_SETTINGS,
      clock,
      massRejection: { settings: DEFAULT_MASS_REJECTION, store, onTrip: (trip) => trips.push(trip) },
    });
    const emails = Array.from({ length: 60 }, (_, i) => `person${String(i).padStart(2, '0')}@wall.test`);
    const { deliveryId, logIds } = await seedDelivery(store.db, {
      now: clock.now(),
      recipients: emails.map((email) => ({ email })),
    });
    const reply = parseSmtpReply('550 5.1.1 The email account that you tried to reach does not exist');
    const outcomes: Outcome[] = emails.map((email, i) => ({
      kind: 'failed',
      logId: logIds[i]!,
      deliveryId,
      email,
      mxHost: 'mx.wall.test',
      at: clock.now() + i,
      reply,
      verdict: classify(reply),
      expired: false,
    }));
    const commit = async (batch: Outcome[]) => {
      await inTransaction(store, (trx) => hooks.applyWithin(trx, batch));
      hooks.onOutcomes(batch);
    };

    // Ten answers written: ten addresses quarantined, as any hard 5.1.1 is.
    for (const outcome of outcomes.slice(0, 10)) hooks.onFinished(outcome);
    await commit(outcomes.slice(0, 10));
    expect((await countAddressesByState(store)).quarantined).toBe(10);

    // Forty more answers arrive while nothing is written: the 50th trips the domain at once.
    for (const outcome of outcomes.slice(10, 49)) hooks.onFinished(outcome);
    expect(trips).toHaveLength(0);
    hooks.onFinished(outcomes[49]!);
    expect(trips.map((trip) => [trip.domain, trip.messages, trip.hard])).toEqual([['wall.test', 50, 50]]);
    // Nothing is released before the tripping outcome is committed.
    await hooks.flush();
    expect((await countAddressesByState(store)).quarantined).toBe(10);

    await commit(outcomes.slice(10, 50));
    await hooks.flush();
    expect((await countAddressesByState(store)).quarantined ?? 0).toBe(0);
    const first = await addressTimeline(store, emails[0]!);
    expect(first.map((event) => event.source)).toEqual(['smtp', 'schedule']);
    expect(first[1]!.note).toMatch(/^released: mass rejection: wall\.test answered 50 of 50 messages/);
    // An answer after the trip is kept on the timeline only.
    const late = await addressTimeline(store, emails[30]!);
    expect(late).toHaveLength(1);
    expect(late[0]!.note).toMatch(/^not applied: mass rejection/);
    classifiers.close();
  });
});
