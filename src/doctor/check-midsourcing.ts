import { duration, iso, minuteMs, type DoctorCheck, type Finding } from './finding.ts';

// Mid-sourcing, marketing side (`herald mid status`): a push that stopped with parts still pending,
// a push whose requests keep failing, and a forwarded pause/resume/stop the execution instance has
// not acknowledged.

export const midsourcingCheck: DoctorCheck = {
  name: 'midsourcing',
  description: 'pushes to execution instances stalled or failing, forwarded state changes not acknowledged',
  run(snapshot, now, settings) {
    const findings: Finding[] = [];
    const stalledMs = settings.midStalledMinutes * minuteMs;
    for (const facts of snapshot.midsourcing) {
      const status = facts.status;
      const subject = `delivery ${status.deliveryId}`;
      const lastMove = Math.max(facts.updatedAt, facts.lastAckAt ?? 0, facts.pushStartedAt ?? 0);
      const evidence = {
        deliveryId: status.deliveryId,
        peer: status.peer,
        parts: status.parts,
        attempts: status.attempts,
        retries: status.retries,
        timeouts: status.timeouts,
        lastError: status.lastError,
        lastAckAt: facts.lastAckAt === null ? null : iso(facts.lastAckAt),
      };
      const finished = status.stateChange?.localState === 'stopped';
      if (status.state === 'pushing' && !finished && (status.parts.pending > 0 || status.parts.total === 0) && now - lastMove > stalledMs) {
        findings.push({
          check: 'midsourcing',
          severity: 'critical',
          subject,
          symptom: `the push to ${status.peer} has made no progress for ${duration(now - lastMove)}: ${status.parts.acked}/${status.parts.total} parts acknowledged`,
          cause: status.lastError
            ? `the push stopped on an error: ${status.lastError}`
            : 'the process that pushed it stopped (the push runs inside `herald mid push`; mid-sync-counters resumes stalled pushes every 10 minutes when a node runs the workflows role)',
          fix: `\`herald mid push ${status.deliveryId} --peer ${status.peer}\` resumes it where it stopped; \`herald mid status --delivery ${status.deliveryId}\` shows the parts`,
          evidence: { ...evidence, stalledMinutes: Math.round((now - lastMove) / minuteMs), thresholdMinutes: settings.midStalledMinutes },
        });
      } else if (status.bottleneck === 'network' && status.parts.pending > 0) {
        findings.push({
          check: 'midsourcing',
          severity: 'warning',
          subject,
          symptom: `pushing to ${status.peer} needs many retries: ${status.retries} retries, ${status.timeouts} timeouts for ${status.parts.total} parts`,
          cause: `${status.diagnosis}${status.lastError ? `; last error: ${status.lastError}` : ''}`,
          fix: `check that ${status.peer} is up and reachable (its \`herald start --roles mid\` logs) and the midsourcing.peers entry (url, key); the push resumes with \`herald mid push ${status.deliveryId} --peer ${status.peer}\``,
          evidence,
        });
      }
      const change = status.stateChange;
      if (change && !change.reached) {
        const since = change.changedAt ?? facts.updatedAt;
        if (now - since > stalledMs) {
          findings.push({
            check: 'midsourcing',
            severity: 'warning',
            subject,
            symptom: `the change to ${change.localState ?? change.target} (version ${change.version}) has not been acknowledged by ${status.peer} for ${duration(now - since)}: the execution instance may still be sending`,
            cause: change.lastError
              ? `forwarding failed ${change.attempts} time(s): ${change.lastError}`
              : change.version === 0 || change.target !== change.localState
                ? 'the state change was never forwarded: the mid-sync-counters workflow forwards it (no node runs the workflows role?)'
                : `${change.attempts} attempt(s) without an acknowledgement`,
            fix: `\`herald mid sync\` forwards it now and prints the result; keep a node with the workflows role running (mid-sync-counters, every 10 minutes)`,
            evidence: { ...evidence, localState: change.localState, target: change.target, version: change.version, ackedVersion: change.ackedVersion, attempts: change.attempts, changedAt: change.changedAt === null ? null : iso(change.changedAt), stateError: change.lastError },
          });
        }
      }
    }
    return findings;
  },
};
