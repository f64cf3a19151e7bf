import { dayMs, duration, iso, percent, type DoctorCheck, type Finding } from './finding.ts';

// Database health as `herald db status` reports it, plus the purge backlog: data kept past its
// retention means the cleanup workflow does not purge; dead space means maintenance is behind.

/** A query waiting this long for a lock is reported (a LOCK TABLE left open, a VACUUM FULL). */
export const lockWaitWarningMs = 5_000;

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

export const databaseCheck: DoctorCheck = {
  name: 'database',
  description:
    'data kept past its retention (cleanup not purging), table/index bloat and SQLite free space, failed maintenance',
  run(snapshot, now, settings) {
    const findings: Finding[] = [];
    const { retention } = settings;
    const logs = snapshot.retention.deliveryLogs;
    const logsLimit = now - (retention.deliveryLogsDays + settings.purgeGraceDays) * dayMs;
    if (logs.purgeable > 0 && logs.oldestAt !== null && logs.oldestAt < logsLimit) {
      findings.push({
        check: 'database',
        severity: 'warning',
        subject: 'table delivery_logs',
        symptom: `${logs.capped ? 'more than ' : ''}${logs.purgeable} delivery logs of finished deliveries are older than workflows.cleanup.deliveryLogsDays (${retention.deliveryLogsDays} days); the oldest dates from ${iso(logs.oldestAt)}`,
        cause: `the cleanup workflow (daily) has not purged them: ${cleanupState(snapshot, now)}`,
        fix: '`herald workflows run cleanup` purges them in bounded batches; keep a node with the workflows role running',
        evidence: {
          purgeable: logs.purgeable,
          capped: logs.capped,
          oldestAt: iso(logs.oldestAt),
          retentionDays: retention.deliveryLogsDays,
        },
      });
    }
    const events = snapshot.retention.trackingEvents;
    if (
      events.purgeable > 0 &&
      events.oldestAt !== null &&
      events.oldestAt < now - (retention.trackingLogsDays + settings.purgeGraceDays) * dayMs
    ) {
      findings.push({
        check: 'database',
        severity: 'warning',
        subject: 'table tracking_events',
        symptom: `about ${events.purgeable} raw tracking events are older than workflows.cleanup.trackingLogsDays (${retention.trackingLogsDays} days); the oldest dates from ${iso(events.oldestAt)}`,
        cause: `the cleanup workflow (daily) has not purged them: ${cleanupState(snapshot, now)}`,
        fix: '`herald workflows run cleanup` purges them in bounded batches; keep a node with the workflows role running',
        evidence: {
          purgeable: events.purgeable,
          oldestAt: iso(events.oldestAt),
          retentionDays: retention.trackingLogsDays,
        },
      });
    }
    const db = snapshot.database;
    for (const table of db.tables) {
      if (
        table.bloatRatio !== null &&
        table.bloatRatio >= settings.bloatRatio &&
        table.tableBytes >= settings.bloatMinBytes
      ) {
        findings.push({
          check: 'database',
          severity: 'warning',
          subject: `table ${table.name}`,
          symptom: `${percent(table.bloatRatio)} of ${table.name} (${mb(table.tableBytes)}) is dead space${table.deadRows !== null ? ` (${table.deadRows} dead rows)` : ''}`,
          cause:
            db.dialect === 'postgres'
              ? 'deleted and updated rows are not vacuumed fast enough (autovacuum behind, or a long transaction holds them)'
              : 'deleted rows left unused space in the table pages',
          fix: '`herald db maintain` now (the cleanup workflow runs it nightly); `herald db status` shows the figures',
          evidence: {
            table: table.name,
            bloatRatio: table.bloatRatio,
            tableBytes: table.tableBytes,
            deadRows: table.deadRows,
            lastVacuumAt: table.lastVacuumAt,
            thresholdRatio: settings.bloatRatio,
          },
        });
      }
      for (const index of table.indexes) {
        if (index.bloatRatio === null || index.bloatRatio < settings.bloatRatio || index.bytes < settings.bloatMinBytes)
          continue;
        findings.push({
          check: 'database',
          severity: 'warning',
          subject: `index ${index.name}`,
          symptom: `index ${index.name} of ${table.name} is ${mb(index.bytes)}, about ${percent(index.bloatRatio)} of it dead space`,
          cause:
            'purges and updates left the index pages sparse; it is rebuilt by the nightly maintenance when the cleanup workflow runs',
          fix: `\`herald db maintain\` (PostgreSQL: REINDEX CONCURRENTLY of indexes past workflows.cleanup.reindexBloatRatio ${settings.bloatRatio})`,
          evidence: {
            index: index.name,
            table: table.name,
            bytes: index.bytes,
            bloatRatio: index.bloatRatio,
            thresholdRatio: settings.bloatRatio,
          },
        });
      }
    }
    if (
      db.freeBytes !== null &&
      db.sizeBytes > 0 &&
      db.freeBytes >= settings.bloatMinBytes &&
      db.freeBytes / db.sizeBytes >= settings.sqliteFreeRatio
    ) {
      const convert = db.autoVacuum !== 'incremental';
      findings.push({
        check: 'database',
        severity: 'info',
        subject: 'database file',
        symptom: `${mb(db.freeBytes)} of the ${mb(db.sizeBytes)} SQLite file (${percent(db.freeBytes / db.sizeBytes)}) are free pages`,
        cause: convert
          ? `auto_vacuum is ${db.autoVacuum}: free pages are reused by new rows but never returned to the file system`
          : 'the incremental vacuum of the nightly maintenance has not run since the last large purge',
        fix: convert
          ? '`herald db maintain --convert` (one full VACUUM: blocks writers while it runs; do it when nothing sends)'
          : '`herald db maintain`',
        evidence: {
          freeBytes: db.freeBytes,
          sizeBytes: db.sizeBytes,
          freelistPages: db.freelistPages,
          autoVacuum: db.autoVacuum,
        },
      });
    }
    // A wait this long is not two writers crossing: a session holds a lock and does not let go.
    const stuck = db.lockWaits.filter((w) => w.waitingMs >= lockWaitWarningMs);
    const holder = stuck[0];
    if (holder)
      findings.push({
        check: 'database',
        severity: 'warning',
        subject: 'database locks',
        symptom: `${stuck.length} quer${stuck.length === 1 ? 'y has' : 'ies have'} been waiting for a lock for up to ${duration(holder.waitingMs)} (${holder.query.slice(0, 80)})`,
        cause: `PostgreSQL session ${holder.blockerPid} (${holder.blockerState ?? 'unknown state'}${holder.blockerTransactionMs === null ? '' : `, transaction open for ${duration(holder.blockerTransactionMs)}`}) holds the lock: ${holder.blockerQuery.slice(0, 120)}`,
        fix: `let it finish, or end it with \`SELECT pg_terminate_backend(${holder.blockerPid})\`; the waiting queries give up after database.lockTimeoutMs with DATABASE_LOCK_TIMEOUT`,
        evidence: { waits: stuck },
      });
    const interrupted = db.lastMaintenance?.state === 'interrupted' ? db.lastMaintenance : undefined;
    if (interrupted)
      findings.push({
        check: 'database',
        severity: 'warning',
        subject: 'database maintenance',
        symptom: `maintenance interrupted at ${interrupted.step ?? 'its start'}, started ${interrupted.startedAt} (${interrupted.source})`,
        cause: `its process (${interrupted.owner}) ended without finishing it (killed, out of memory, a reboot); last progress ${interrupted.finishedAt}`,
        fix: '`herald db maintain` runs it again and prints each step; it first drops the invalid copy (`*_ccnew`) an interrupted REINDEX CONCURRENTLY leaves',
        evidence: {
          source: interrupted.source,
          step: interrupted.step,
          startedAt: interrupted.startedAt,
          lastProgressAt: interrupted.finishedAt,
          owner: interrupted.owner,
        },
      });
    if (db.lastMaintenance?.error) {
      findings.push({
        check: 'database',
        severity: 'warning',
        subject: 'database maintenance',
        symptom: `the last maintenance (${db.lastMaintenance.source}, ${db.lastMaintenance.finishedAt}) failed`,
        cause: db.lastMaintenance.error,
        fix: '`herald db maintain` runs it again and prints each step; `herald workflows logs cleanup` shows the nightly one',
        evidence: {
          source: db.lastMaintenance.source,
          finishedAt: db.lastMaintenance.finishedAt,
          error: db.lastMaintenance.error,
        },
      });
    }
    return findings;
  },
};

function cleanupState(
  snapshot: {
    workflows: Array<{
      name: string;
      enabled: boolean;
      pausedAt: number | null;
      lastSuccessAt: number | null;
      lastFinished: { status: string; error: string | null } | null;
    }>;
  },
  now: number,
): string {
  const cleanup = snapshot.workflows.find((w) => w.name === 'cleanup');
  if (!cleanup) return 'it is not registered';
  if (!cleanup.enabled) return 'it is disabled (workflows.overrides.cleanup.enabled)';
  if (cleanup.pausedAt !== null)
    return `it is paused since ${iso(cleanup.pausedAt)} (\`herald workflows resume cleanup\`)`;
  if (cleanup.lastFinished?.status === 'failed')
    return `its last run failed: ${cleanup.lastFinished.error ?? 'no error recorded'}`;
  return cleanup.lastSuccessAt === null
    ? 'it never succeeded'
    : `its last success was ${duration(now - cleanup.lastSuccessAt)} ago`;
}
