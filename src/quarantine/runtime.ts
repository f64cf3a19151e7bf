import { createClassifierSource, type ClassifierSource } from '../bounce/qualification-classifier.ts';
import { createQualificationRecorder, type QualificationRecorder } from '../bounce/qualification-recorder.ts';
import { createReplyClassifier } from '../bounce/reply-classifier.ts';
import type { ClassifyReply } from '../bounce/types.ts';
import type { Herald } from '../main.ts';
import { createMtaQualification, type MtaQualification } from './mta-hooks.ts';
import { quarantineSettings } from './settings.ts';
import { createQuarantineSweeper, type QuarantineSweeper } from './sweeper.ts';
import type { MassRejectionTrip } from './mass-rejection.ts';
import type { QuarantineSettings } from './types.ts';

// Bounce qualification and quarantine as one process runs them: the reloading classifier, the
// qualification recorder, the MTA hooks and the sweep. Roles (mta, inbound, demo) build one each.

export interface QuarantineRuntime {
  classifiers: ClassifierSource;
  /** The MTA's reply qualification: the current rule pack, built-in verdicts for local failures. */
  classify: ClassifyReply;
  recorder: QualificationRecorder;
  mta: MtaQualification;
  sweeper: QuarantineSweeper;
  settings: QuarantineSettings;
  /** Applies what is pending, writes the qualification table, stops timers. */
  close(): Promise<void>;
}

export interface QuarantineRuntimeOptions {
  /** Called when the mass-rejection guard trips a domain (composeMta suspends it in the breaker). */
  onMassRejection?(trip: MassRejectionTrip): void;
}

export async function createQuarantineRuntime(
  herald: Herald,
  options: QuarantineRuntimeOptions = {},
): Promise<QuarantineRuntime> {
  const { config, store, clock, logger } = herald;
  const settings = quarantineSettings(config);
  const classifiers = await createClassifierSource({
    siteRulesFile: config.bounce.siteRulesFile,
    checkMs: config.bounce.reloadCheckMs,
    logger,
  });
  const recorder = createQualificationRecorder({
    store,
    now: () => clock.now(),
    flushMs: config.bounce.qualificationFlushMs,
    logger,
  });
  const mta = createMtaQualification({
    recorder,
    settings,
    clock,
    massRejection: {
      settings: config.quarantine.massRejection,
      store,
      logger,
      ...(options.onMassRejection && { onTrip: options.onMassRejection }),
    },
  });
  const sweeper = createQuarantineSweeper({
    store,
    settings,
    clock,
    intervalMs: config.quarantine.sweepIntervalMinutes * 60_000,
    logger,
  });
  return {
    classifiers,
    classify: createReplyClassifier(() => classifiers.current()),
    recorder,
    mta,
    sweeper,
    settings,
    async close() {
      await sweeper.stop();
      await mta.flush();
      await recorder.close();
      classifiers.close();
    },
  };
}
