import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { AppError } from '../common/errors.ts';
import type { HeraldConfig } from '../config/schema.ts';
import { inTransaction, type Store } from '../store/database.ts';
import {
  getActiveVersion,
  getVersion,
  insertVersion,
  pruneVersions,
  switchActiveVersion,
} from './rule-version-store.ts';
import { prepareBounceTarget } from './bounce-target.ts';
import { diffPacks, type RuleDiff } from './diff.ts';
import { mxTargetFile, prepareMxTarget } from './mx-target.ts';
import type { FetchOptions } from './http-source.ts';
import { readRuleSource, type PackFile } from './source.ts';
import { materializeHeader, readIfExists, writeTargets, type PackTarget, type TargetResult } from './targets.ts';
import type { RuleKind, RuleVersionRow } from '../store/tables.ts';

// The deliverability update: read the source, validate every pack (alone and layered the way the
// running roles load it) before storing anything, store each new content as a version with its
// diff, then switch the active versions and write the watched rule files in one transaction.

export interface RulesDeps {
  store: Store;
  config: HeraldConfig;
  now: number;
}

export interface KindUpdate {
  kind: RuleKind;
  /** `updated`: new version active; `unchanged`: same content as the active version; `repaired`: same version, its file was missing or edited and was written again. */
  outcome: 'updated' | 'unchanged' | 'repaired';
  versionId: number;
  version: string;
  previousVersion: string | null;
  file: string;
  diff: RuleDiff;
}

export interface UpdateResult {
  source: string;
  kinds: KindUpdate[];
}

export function versionHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16);
}

export async function updateRulePacks(
  deps: RulesDeps,
  source: string = deps.config.deliverability.source,
  destinations?: FetchOptions['destinations'],
): Promise<UpdateResult> {
  if (!source)
    throw new AppError(
      'CONFIG_INVALID',
      'deliverability.source is empty: give a directory or an https:// URL (or --source)',
    );
  const { maxFileBytes, fetchTimeoutMs } = deps.config.deliverability;
  const read = await readRuleSource(source, { maxFileBytes, timeoutMs: fetchTimeoutMs, destinations });
  const { store } = deps;
  const issues: string[] = [];
  const pending: Array<{ file: PackFile; active: RuleVersionRow | undefined; version: string; target: PackTarget }> =
    [];
  const kinds: KindUpdate[] = [];
  for (const file of read.files) {
    const active = await getActiveVersion(store, file.kind);
    const version = versionHash(file.text);
    if (active && active.content === file.text) {
      const repair = await repairTarget(deps.config, active);
      if (repair?.ok) pending.push({ file, active, version, target: repair.target });
      kinds.push({
        kind: file.kind,
        outcome: repair?.ok ? 'repaired' : 'unchanged',
        versionId: active.id,
        version,
        previousVersion: active.version,
        file: targetFile(deps.config, file.kind),
        diff: emptyDiff(),
      });
      continue;
    }
    const prepared = await prepareTarget(
      deps.config,
      file.kind,
      file.text,
      file.name,
      materializeHeader(file.kind, version, file.name),
      active?.content,
    );
    if (!prepared.ok) issues.push(...prepared.issues);
    else pending.push({ file, active, version, target: prepared.target });
  }
  if (issues.length > 0) {
    throw new AppError(
      'RULES_INVALID',
      `rule packs from ${read.source} rejected, nothing changed:\n${issues.join('\n')}`,
      { details: { issues } },
    );
  }
  const created = pending.filter((p) => !kinds.some((k) => k.kind === p.file.kind));
  await inTransaction(store, async (trx) => {
    for (const entry of created) {
      const diff = diffPacks(entry.file.kind, entry.active?.content, entry.file.text);
      const id = await insertVersion(trx, {
        kind: entry.file.kind,
        version: entry.version,
        content: entry.file.text,
        source: entry.file.name,
        diff: JSON.stringify(diff),
        replaces_id: entry.active?.id ?? null,
        created_at: deps.now,
      });
      await switchActiveVersion(trx, entry.file.kind, entry.active?.id, id, deps.now);
      kinds.push({
        kind: entry.file.kind,
        outcome: 'updated',
        versionId: id,
        version: entry.version,
        previousVersion: entry.active?.version ?? null,
        file: entry.target.file,
        diff,
      });
    }
    // Last, inside the transaction: a failed write rolls the switch back.
    writeTargets(pending.map((p) => p.target));
  });
  for (const entry of created) await pruneVersions(store, entry.file.kind, deps.config.deliverability.keepVersions);
  kinds.sort((a, b) => a.kind.localeCompare(b.kind));
  return { source: read.source, kinds };
}

export interface RollbackResult {
  kind: RuleKind;
  from: { id: number; version: string };
  to: { id: number; version: string; source: string };
  file: string;
  diff: RuleDiff;
}

/** Makes the version the active one replaced active again, applied like an update. */
export async function rollbackRulePack(deps: RulesDeps, kind: RuleKind): Promise<RollbackResult> {
  const { store } = deps;
  const active = await getActiveVersion(store, kind);
  if (!active)
    throw new AppError(
      'INVALID_STATE',
      `no ${kind} rule version is active: nothing to roll back (herald rules versions --kind ${kind})`,
    );
  if (active.replaces_id === null)
    throw new AppError(
      'INVALID_STATE',
      `${kind} rule version ${active.version} (#${active.id}) is the first one: there is no previous version to roll back to`,
    );
  const previous = await getVersion(store, active.replaces_id);
  if (!previous)
    throw new AppError(
      'INVALID_STATE',
      `the ${kind} version #${active.id} replaced (#${active.replaces_id}) is no longer stored (pruned): nothing to roll back to`,
    );
  const prepared = await prepareTarget(
    deps.config,
    kind,
    previous.content,
    `${kind} version ${previous.version} (${previous.source})`,
    materializeHeader(kind, previous.version, previous.source),
    active.content,
  );
  if (!prepared.ok)
    throw new AppError(
      'RULES_INVALID',
      `${kind} version ${previous.version} no longer validates with the current rule files, nothing changed:\n${prepared.issues.join('\n')}`,
      { details: { issues: prepared.issues } },
    );
  await inTransaction(store, async (trx) => {
    await switchActiveVersion(trx, kind, active.id, previous.id, deps.now);
    writeTargets([prepared.target]);
  });
  return {
    kind,
    from: { id: active.id, version: active.version },
    to: { id: previous.id, version: previous.version, source: previous.source },
    file: prepared.target.file,
    diff: diffPacks(kind, active.content, previous.content),
  };
}

async function prepareTarget(
  config: HeraldConfig,
  kind: RuleKind,
  text: string,
  name: string,
  header: string,
  replacedText: string | undefined,
): Promise<TargetResult> {
  return kind === 'mx'
    ? prepareMxTarget(config.shaping, text, name, header)
    : prepareBounceTarget(config.bounce.siteRulesFile, text, name, header, replacedText);
}

function targetFile(config: HeraldConfig, kind: RuleKind): string {
  return kind === 'mx' ? (mxTargetFile(config.shaping) ?? '') : config.bounce.siteRulesFile;
}

/**
 * The active version's file went missing (or, for MX, was edited): write it again. The bounce site
 * file is shared with `herald bounce qualify`, so only its absence is repaired.
 */
async function repairTarget(config: HeraldConfig, active: RuleVersionRow): Promise<TargetResult | undefined> {
  const file = targetFile(config, active.kind);
  const header = materializeHeader(active.kind, active.version, active.source);
  if (active.kind === 'bounce' && existsSync(file)) return undefined;
  const prepared = await prepareTarget(
    config,
    active.kind,
    active.content,
    `${active.kind} version ${active.version} (${active.source})`,
    header,
    active.content,
  );
  // A file that no longer layers (an operator's broken site file) is the MTA's log's business, not a reason to fail an unchanged update.
  if (!prepared.ok || readIfExists(prepared.target.file) === prepared.target.content) return undefined;
  return prepared;
}

function emptyDiff(): RuleDiff {
  return { added: [], removed: [], changed: [] };
}
