import { duration, iso, minuteMs, type DoctorCheck, type Finding } from './finding.ts';
import type { DoctorSnapshot, MidOutboundFacts } from './snapshot.ts';

// Mid-sourcing, marketing side (`herald mid status`): a push that stopped with parts still pending,
// a push whose requests keep failing, a push that is slow and which side makes it slow (the
// marketing side building parts — reading the logs, database bloat — or the execution side
// accepting them), and a forwarded pause/resume/stop the execution instance has not acknowledged.

export const midsourcingCheck: DoctorCheck = {
  name: 'midsourcing',
  description: 'pushes to execution instances stalled or failing, forwarded state changes not acknowledged',
  run(snapshot, now, settings) {
    const findings: Finding[] = [];
    const stalledMs = settings.midStalledMinutes * minuteMs;
    for (const facts of snapshot.midsourcing) {
      const status = facts.status;
      const subject = `delivery ${status.deliveryId}`;
      // A push failing since its last acknowledged part has not moved, however often it is retried
      // (every retry, and mid-sync-counters' resume every 10 minutes, touch the row).
      const failing = status.lastError !== null && (status.lastErrorAt ?? 0) >= (facts.lastAckAt ?? 0);
      const lastMove = failing
        ? Math.max(facts.lastAckAt ?? 0, facts.pushStartedAt ?? 0)
        : Math.max(facts.updatedAt, facts.lastAckAt ?? 0, facts.pushStartedAt ?? 0);
      const advice = peerErrorAdvice(status.peer, status.lastError);
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
      if (
        status.state === 'pushing' &&
        !finished &&
        (status.parts.pending > 0 || status.parts.total === 0) &&
        now - lastMove > stalledMs
      ) {
        findings.push({
          check: 'midsourcing',
          severity: 'critical',
          subject,
          symptom: `the push to ${status.peer} has made no progress for ${duration(now - lastMove)}: ${status.parts.acked}/${status.parts.total} parts acknowledged`,
          cause: status.lastError
            ? `the push stopped on an error: ${status.lastError}${advice ? `: ${advice.cause}` : ''}`
            : 'the process that pushed it stopped (the push runs inside `herald mid push`; mid-sync-counters resumes stalled pushes every 10 minutes when a node runs the workflows role)',
          fix: `${advice ? `${advice.fix}; then ` : ''}\`herald mid push ${status.deliveryId} --peer ${status.peer}\` resumes it where it stopped; \`herald mid status --delivery ${status.deliveryId}\` shows the parts`,
          evidence: {
            ...evidence,
            stalledMinutes: Math.round((now - lastMove) / minuteMs),
            thresholdMinutes: settings.midStalledMinutes,
          },
        });
      } else if (
        status.bottleneck === 'network' &&
        status.parts.pending > 0 &&
        !(status.timeouts > 0 && slowSide(facts, snapshot, settings.midSlowPartMs))
      ) {
        findings.push({
          check: 'midsourcing',
          severity: 'warning',
          subject,
          symptom: `pushing to ${status.peer} needs many retries: ${status.retries} retries, ${status.timeouts} timeouts for ${status.parts.total} parts`,
          cause: `${status.diagnosis}${status.lastError ? `; last error: ${status.lastError}` : ''}`,
          fix: `check that ${status.peer} is up and reachable (its \`herald start --roles mid\` logs) and the midsourcing.peers entry (url, key); the push resumes with \`herald mid push ${status.deliveryId} --peer ${status.peer}\``,
          evidence,
        });
      } else {
        const side = slowSide(facts, snapshot, settings.midSlowPartMs);
        if (side) findings.push({ ...side, subject, evidence: { ...evidence, ...side.evidence } });
      }
      const pullFailedAt = status.lastErrorAt ?? 0;
      if (
        status.state === 'finalized' &&
        !status.logs.complete &&
        status.lastError !== null &&
        pullFailedAt > Math.max(status.logs.syncedAt ?? 0, facts.finalizedAt ?? 0)
      ) {
        const since = status.logs.syncedAt ?? facts.finalizedAt ?? facts.updatedAt;
        if (now - since > stalledMs)
          findings.push({
            check: 'midsourcing',
            severity: advice?.refused ? 'critical' : 'warning',
            subject,
            symptom: `the outcomes of ${subject} are not coming back from ${status.peer}: ${status.logs.syncedAt === null ? 'no log pulled' : 'no log pulled successfully'} for ${duration(now - since)} (the delivery cannot finish here until they are)`,
            cause: `pulling from ${status.peer} fails: ${status.lastError}${advice ? `: ${advice.cause}` : ''}`,
            fix: `${advice ? `${advice.fix}; ` : ''}\`herald mid sync\` pulls now and prints the result (the mid-sync-logs and mid-sync-counters workflows retry on schedule)`,
            evidence: {
              ...evidence,
              lastErrorAt: iso(pullFailedAt),
              logsSyncedAt: status.logs.syncedAt === null ? null : iso(status.logs.syncedAt),
              logCursor: status.logs.cursor,
            },
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
            evidence: {
              ...evidence,
              localState: change.localState,
              target: change.target,
              version: change.version,
              ackedVersion: change.ackedVersion,
              attempts: change.attempts,
              changedAt: change.changedAt === null ? null : iso(change.changedAt),
              stateError: change.lastError,
            },
          });
        }
      }
    }
    return findings;
  },
};

/** A push still going whose parts take long on one side: which side, with the fix for that side. */
function slowSide(
  facts: MidOutboundFacts,
  snapshot: DoctorSnapshot,
  slowPartMs: number,
): Omit<Finding, 'subject'> | null {
  const status = facts.status;
  if (status.parts.pending === 0 && status.state !== 'pushing') return null;
  const build = status.buildMs.avg;
  const append = status.appendMs.avg;
  if (build === null && append === null) return null;
  const building = (build ?? 0) >= (append ?? 0);
  const slowest = building ? build! : append!;
  if (slowest < slowPartMs) return null;
  const bloated = snapshot.database.tables
    .filter((t) => t.bloatRatio !== null && t.bloatRatio >= 0.2)
    .map((t) => ({ table: t.name, bloatRatio: t.bloatRatio, lastVacuumAt: t.lastVacuumAt }));
  const figures = `${build ?? '?'} ms to build a part vs ${append ?? '?'} ms for ${status.peer} to append it (averages over ${status.parts.acked} parts${status.timeouts > 0 ? `, ${status.timeouts} requests timed out` : ''})`;
  if (building)
    return {
      check: 'midsourcing',
      severity: 'warning',
      symptom: `the push to ${status.peer} is slow on the marketing side: ${figures}`,
      cause: `this (marketing) instance is slow reading and compressing the parts${bloated.length > 0 ? `; its database is bloated (${bloated.map((b) => `${b.table} ${Math.round((b.bloatRatio ?? 0) * 100)}%`).join(', ')})` : ''}: the query behind each part is slow, and requests that wait on it time out (HTTP 408)`,
      fix: `maintain this database: \`herald db maintain\` (VACUUM/ANALYZE, reindex; \`herald db status\` shows the bloat); send smaller parts (midsourcing.partSize); then resume with \`herald mid push ${status.deliveryId} --peer ${status.peer}\``,
      evidence: { side: 'marketing', buildMsAvg: build, appendMsAvg: append, bloatedTables: bloated, slowPartMs },
    };
  return {
    check: 'midsourcing',
    severity: 'warning',
    symptom: `the push to ${status.peer} is slow on the execution side: ${figures}`,
    cause: `the execution instance ${status.peer} is slow accepting parts: its database (appending logs) is slow or bloated, or its technical workflows are failing and not cleaning it`,
    fix: `on ${status.peer}: \`herald db status\` and \`herald db maintain\`, \`herald workflows list\` and \`herald workflows restart NAME\` for failed ones (\`herald workflows run NAME\` for scheduled ones that are late); smaller parts (midsourcing.partSize) shorten each request`,
    evidence: { side: 'execution', buildMsAvg: build, appendMsAvg: append, slowPartMs },
  };
}

/**
 * Pure: what an error of the execution instance, as the marketing side records it ("…: CODE: message"),
 * says to fix. `refused` when retrying cannot help.
 */
export function peerErrorAdvice(
  peer: string,
  lastError: string | null,
): { cause: string; fix: string; refused: boolean } | null {
  const advice = adviceForCode(peer, lastError);
  // An error answer not signed by the peer (retry.ts, refuseUnsignedAnswer) may not be its word.
  if (advice && lastError?.includes(`not signed by ${peer}:`))
    return {
      ...advice,
      cause: `${advice.cause}; but this answer was not signed by ${peer}: it may come from a proxy or anything else on its url (it is retried, never taken as ${peer}'s verdict)`,
    };
  return advice;
}

function adviceForCode(
  peer: string,
  lastError: string | null,
): { cause: string; fix: string; refused: boolean } | null {
  const code = lastError === null ? undefined : /: ([A-Z][A-Z0-9_]{2,}): /.exec(lastError)?.[1];
  if (code === undefined) return null;
  if (code === 'BAD_SIGNATURE')
    return {
      refused: true,
      cause: `${peer} does not accept this instance's signature: the shared secrets differ, or ${peer} has no midsourcing.peers entry named as this instance signs (midsourcing.name)`,
      fix: `make the "${peer}" entry of midsourcing.peers here and ${peer}'s entry for this instance's midsourcing.name carry the same secret (${peer}'s log "mid-sourcing request rejected before its body" says which is wrong)`,
    };
  if (code === 'STALE_TIMESTAMP')
    return {
      refused: true,
      cause: `the clocks of this instance and ${peer} differ by more than midsourcing.replayWindowSeconds`,
      fix: 'synchronize both clocks (NTP)',
    };
  if (code === 'ANSWER_NOT_SIGNED')
    return {
      refused: true,
      cause: `what answers at ${peer}'s url is not ${peer} holding this pair's secret (its answers are not signed with it): a wrong url pointing at another service, a proxy or load balancer answering for a dead backend, someone in the middle of plain HTTP, a different secret over there, or ${peer} running a Herald older than answer signing; nothing it answered was used`,
      fix: `check the url of "${peer}" in midsourcing.peers and what listens there (${peer}'s \`herald start --roles mid\`, and any proxy between), and that both sides carry the same secret; use https across untrusted networks; an older ${peer}: upgrade it (acceptUnsignedAnswers on its midsourcing.peers entry lets pushes through meanwhile, docs/midsourcing.md#upgrading)`,
    };
  if (code === 'NOT_FOUND')
    return {
      refused: true,
      cause: `${peer} does not know this delivery (its database was reset or restored, or the delivery was purged there)`,
      fix: `check ${peer}'s database and that midsourcing.peers points this instance at the right execution instance`,
    };
  if (/^(INVALID_RESPONSE|RESPONSE_TOO_LARGE|HTTP_[34]\d\d)$/.test(code))
    return {
      refused: true,
      cause: `what answers at ${peer}'s url does not speak the mid-sourcing protocol (another service, a proxy or a redirect, or a broken or hostile instance)`,
      fix: `check the url of "${peer}" in midsourcing.peers and what listens there (its \`herald start --roles mid\`)`,
    };
  if (/^(TIMEOUT|UNAVAILABLE|INTERNAL|HTTP_5\d\d|E[A-Z_]+)$/.test(code))
    return {
      refused: false,
      cause: `${peer} is down, overloaded or unreachable from here`,
      fix: `start ${peer} (\`herald start --roles mid\` there) or fix its url in midsourcing.peers and the network between`,
    };
  return null;
}
