import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { RulesHolder } from './compiled-rules.ts';
import { loadRuleFiles, ruleFilesFor, type RuleSources } from './rule-loader.ts';
import { formatIssue, maxPackBytes, type PackIssue } from './rule-pack.ts';

// Reload at the edge: re-read the layered files, and swap only a fully valid result. A broken
// edit keeps the rules in force (and says why in the log); counters are untouched either way.

export type ReloadOutcome =
  | { kind: 'unchanged'; version: string }
  | { kind: 'reloaded'; version: string; previousVersion: string }
  | { kind: 'rejected'; version: string; issues: PackIssue[] };

export async function reloadRules(holder: RulesHolder, sources: RuleSources): Promise<ReloadOutcome> {
  const loaded = await loadRuleFiles(ruleFilesFor(sources));
  const current = holder.current();
  if (!loaded.ok) return { kind: 'rejected', version: current.version, issues: loaded.issues };
  if (loaded.rules.version === current.version) return { kind: 'unchanged', version: current.version };
  holder.swap(loaded.rules);
  return { kind: 'reloaded', version: loaded.rules.version, previousVersion: current.version };
}

/**
 * Change detection: names, sizes and content hashes of the layered files (packs are small, at
 * most 1 MiB; modification times alone miss two edits within the filesystem's time resolution).
 */
export function rulesSignature(sources: RuleSources): string {
  return ruleFilesFor(sources)
    .map((file) => {
      try {
        if (statSync(file).size > maxPackBytes) return `${file}:too-large`;
        return `${file}:${createHash('sha1').update(readFileSync(file)).digest('hex')}`;
      } catch {
        return `${file}:missing`;
      }
    })
    .join('|');
}

export interface RulesWatcher {
  /** Checks now (also what the timer calls); exposed for SIGHUP handlers and tests. A check still running is joined. */
  check(): Promise<ReloadOutcome | undefined>;
  stop(): void;
}

/** Polls the rule files every `intervalMs` (1 s by default: a reload takes effect within a second or so). */
export function watchRules(options: {
  holder: RulesHolder;
  sources: RuleSources;
  intervalMs: number;
  logger?: Logger;
}): RulesWatcher {
  let signature = rulesSignature(options.sources);
  const reloadFailed = (error: unknown) =>
    options.logger?.error(
      { event: 'shaping.rules_reload_failed', err: describeError(error) },
      `MX rules not reloaded, keeping version ${options.holder.current().version}: ${(error as Error).message}`,
    );
  // One check at a time: an older reload finishing after a newer one would swap stale rules in.
  let running: Promise<ReloadOutcome | undefined> | undefined;
  const check = (): Promise<ReloadOutcome | undefined> => {
    running ??= checkOnce().finally(() => {
      running = undefined;
    });
    return running;
  };
  const checkOnce = async (): Promise<ReloadOutcome | undefined> => {
    const next = rulesSignature(options.sources);
    if (next === signature) return undefined;
    let outcome: ReloadOutcome;
    try {
      outcome = await reloadRules(options.holder, options.sources);
    } catch (error) {
      // The pattern check itself failed (no child process could start): the rules in force stay, and the next tick tries again.
      reloadFailed(error);
      return undefined;
    }
    signature = next;
    if (outcome.kind === 'reloaded')
      options.logger?.info(
        { event: 'shaping.rules_reloaded', version: outcome.version, previousVersion: outcome.previousVersion },
        `MX rules reloaded (version ${outcome.version})`,
      );
    if (outcome.kind === 'rejected') {
      options.logger?.error(
        { event: 'shaping.rules_rejected', issues: outcome.issues.map(formatIssue) },
        `MX rules not reloaded, keeping version ${outcome.version}: ${outcome.issues.map(formatIssue).join('; ')}`,
      );
    }
    return outcome;
  };
  // A check that throws must not end the process (an unhandled rejection from a timer does).
  const timer = setInterval(() => void check().catch(reloadFailed), options.intervalMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
