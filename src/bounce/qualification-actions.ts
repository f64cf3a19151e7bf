import { AppError } from '../common/errors.ts';
import type { Herald } from '../main.ts';
import type { QualificationEntryRow } from '../store/tables.ts';
import { appendSiteRule, ruleForEntry, type SiteRuleRequest } from './qualification-rule.ts';
import { getQualificationEntry, markQualificationEntry } from './qualification-store.ts';

// The qualification table's operator actions, shared by `herald bounce pending|qualify|ignore` and
// the API: an entry as shown, qualifying an entry into a site rule, ignoring one.

export function qualificationEntryView(e: QualificationEntryRow) {
  return {
    id: e.id,
    count: e.count,
    status: e.status,
    source: e.source,
    replyCode: e.reply_code,
    enhancedStatus: e.enhanced_status,
    pattern: e.pattern,
    example: e.example,
    exampleLogId: e.example_log_id,
    firstSeenAt: new Date(e.first_seen_at).toISOString(),
    lastSeenAt: new Date(e.last_seen_at).toISOString(),
    ruleId: e.rule_id,
    category: e.category,
  };
}

/** Writes a site bounce rule from the entry (running roles reload it) and marks the entry `keep`. */
export async function qualifyEntry(herald: Herald, entryId: number, request: SiteRuleRequest) {
  const entry = await getQualificationEntry(herald.store, entryId);
  if (!entry)
    throw new AppError('NOT_FOUND', `no qualification entry ${entryId} (see herald bounce pending --status all)`);
  const rule = ruleForEntry(
    {
      id: entry.id,
      replyCode: entry.reply_code,
      enhancedStatus: entry.enhanced_status,
      pattern: entry.pattern,
      example: entry.example,
    },
    request,
  );
  const example = [entry.reply_code, entry.enhanced_status, entry.example].filter(Boolean).join(' ');
  const written = await appendSiteRule(herald.config.bounce.siteRulesFile, rule, example);
  await markQualificationEntry(
    herald.store,
    entry.id,
    { status: 'keep', ruleId: written.ruleId, category: rule.category },
    herald.clock.now(),
  );
  return {
    id: entry.id,
    ruleId: written.ruleId,
    category: rule.category,
    file: written.file,
    siteVersion: written.siteVersion,
    packVersion: written.packVersion,
    status: 'keep' as const,
  };
}

export async function ignoreEntry(herald: Herald, entryId: number) {
  if (!(await getQualificationEntry(herald.store, entryId)))
    throw new AppError('NOT_FOUND', `no qualification entry ${entryId}`);
  await markQualificationEntry(herald.store, entryId, { status: 'ignore' }, herald.clock.now());
  return { id: entryId, status: 'ignore' as const };
}
