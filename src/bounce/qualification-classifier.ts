import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describeError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import { compileBounceRules, type BounceClassifier } from './classifier.ts';
import { loadBouncePack, SHIPPED_BOUNCE_PACK } from './rule-pack.ts';

// The classifier a running role uses: the shipped pack with the site rule file layered on top.
// `herald bounce qualify` appends rules to the site file; running roles see the change within
// `checkMs` (content hash compared, the new pack compiled and swapped in whole). A broken file is
// logged and the previous classifier stays in use.

export interface ClassifierSource {
  current(): BounceClassifier;
  /** Reloads now if the site file changed; true when a new classifier was swapped in. A reload still running is joined. */
  reloadIfChanged(): Promise<boolean>;
  close(): void;
}

export interface ClassifierSourceOptions {
  siteRulesFile: string;
  /** 0 = never check by timer (tests call reloadIfChanged). */
  checkMs: number;
  logger?: Logger;
}

export async function buildBounceClassifier(siteRulesFile: string): Promise<BounceClassifier> {
  return compileBounceRules(
    await loadBouncePack([SHIPPED_BOUNCE_PACK, ...(existsSync(siteRulesFile) ? [siteRulesFile] : [])]),
  );
}

export async function createClassifierSource(options: ClassifierSourceOptions): Promise<ClassifierSource> {
  const logger = options.logger ?? silentLogger;
  const hashOf = (): string =>
    existsSync(options.siteRulesFile)
      ? createHash('sha256').update(readFileSync(options.siteRulesFile)).digest('hex')
      : 'none';
  let hash = hashOf();
  let classifier = await buildBounceClassifier(options.siteRulesFile);
  const reloadOnce = async (): Promise<boolean> => {
    let next: string;
    try {
      next = hashOf();
    } catch (error) {
      logger.warn({ err: describeError(error), file: options.siteRulesFile }, 'cannot read the site bounce rules');
      return false;
    }
    if (next === hash) return false;
    hash = next;
    try {
      classifier = await buildBounceClassifier(options.siteRulesFile);
      logger.info({ version: classifier.version, file: options.siteRulesFile }, 'bounce rules reloaded');
      return true;
    } catch (error) {
      logger.error(
        { err: describeError(error), file: options.siteRulesFile },
        'site bounce rules invalid; keeping the previous rules',
      );
      return false;
    }
  };
  // One reload at a time: an older one finishing after a newer one would swap stale rules in.
  let running: Promise<boolean> | undefined;
  const reloadIfChanged = (): Promise<boolean> => {
    running ??= reloadOnce().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = options.checkMs > 0 ? setInterval(() => void reloadIfChanged(), options.checkMs) : undefined;
  timer?.unref();
  return {
    current: () => classifier,
    reloadIfChanged,
    close: () => clearInterval(timer),
  };
}
