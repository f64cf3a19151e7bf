import { duration, iso, minuteMs, type DoctorCheck, type Finding } from './finding.ts';

// A CSV import whose process died (killed, machine lost) stays `running` with its staged rows until
// the next import into any list (which fails it once its lease ran out) or the cleanup workflow
// (after workflows.cleanup.staleImportHours). Until then nothing else says the list is incomplete.

export const importsCheck: DoctorCheck = {
  name: 'imports',
  description: 'CSV imports still running whose process stopped renewing their lease (killed): the list is incomplete',
  run(snapshot, now, settings) {
    const findings: Finding[] = [];
    for (const entry of snapshot.imports) {
      const silentMs = now - entry.updatedAt;
      if (silentMs <= settings.importDeadAfterMinutes * minuteMs) continue;
      findings.push({
        check: 'imports',
        severity: 'warning',
        subject: `import ${entry.id}`,
        symptom: `import ${entry.id} of ${entry.fileName} into list "${entry.list}" is marked running, but nothing has renewed it for ${duration(silentMs)} (since ${iso(entry.updatedAt)}); ${entry.readCount} rows had been read`,
        cause: `the process running \`herald import recipients\` stopped (killed, machine lost): a live import renews its lease every third of import.leaseSeconds (${Math.round(settings.importDeadAfterMinutes * 60)} s). The list holds none of the file's rows if it died while reading, part of them if it died while applying`,
        fix: `run the import again: \`herald import recipients ${entry.fileName} --list ${entry.list}\` fails this one at once, deletes its staged rows and imports the file (rows already applied are updated, not duplicated); otherwise the cleanup workflow's fail-stale-imports step fails it after workflows.cleanup.staleImportHours`,
        evidence: {
          importId: entry.id,
          file: entry.fileName,
          list: entry.list,
          read: entry.readCount,
          startedAt: iso(entry.startedAt),
          lastRenewedAt: iso(entry.updatedAt),
        },
      });
    }
    return findings;
  },
};
