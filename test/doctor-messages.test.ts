import { expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Finding } from '../src/doctor/finding.ts';
import { openHerald } from '../src/main.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { describeEachDialect } from './support/databases.ts';

// The stuck-message watchdog on what MTA nodes leave behind: a node that claimed messages and died,
// a node that keeps renewing claims it never finishes, and due messages no MTA claims. Claims are
// taken through the MTA's own storage (claimDue, renewClaims), as a node does.

const t0 = Date.UTC(2026, 5, 1, 6);
const minute = 60_000;
const hour = 60 * minute;
const leaseMs = 10 * minute;

describeEachDialect('herald doctor: stuck messages', ({ store, url }) => {
  const run = async (now: number, ...args: string[]) => {
    const stdout: string[] = [];
    const context: CliContext = {
      output: { out: (line) => stdout.push(line), err: (line) => stdout.push(line) },
      open: () =>
        openHerald({
          config: parseConfig({ database: { url: url() } }, 'test'),
          logger: silentLogger,
          clock: manualClock(now),
        }),
    };
    const exitCode = await runCli(['node', 'herald', ...args], context);
    const json = stdout.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    return { exitCode, stdout, json, findings: (json[0]?.findings ?? []) as Finding[] };
  };

  it('reports claims of a dead node and of a wedged one, releases the dead one’s safely', async () => {
    const recipients = Array.from({ length: 30 }, (_, i) => ({ email: `w${i}@accept.test` }));
    const { deliveryId } = await seedDelivery(store().db, { now: t0, recipients });
    const mta = createMtaStore(store());
    // mta-dead claims 12 and dies; mta-wedged claims 8 and keeps renewing them for an hour.
    expect(await mta.claimDue('mta-dead', t0, 12, leaseMs)).toHaveLength(12);
    expect(await mta.claimDue('mta-wedged', t0, 8, leaseMs)).toHaveLength(8);
    for (let at = t0 + 5 * minute; at <= t0 + hour; at += 5 * minute) await mta.renewClaims('mta-wedged', at, leaseMs);
    const now = t0 + hour;

    const doctor = await run(now, 'doctor', '--json');
    const watchdog = doctor.findings.filter((f) => f.check === 'messages');
    expect(watchdog.map((f) => [f.subject, f.severity, f.impact])).toEqual([
      ['node mta-dead', 'critical', 12],
      ['node mta-wedged', 'warning', 8],
    ]);
    expect(watchdog[0]!.evidence).toMatchObject({ expired: 12, expiredMinutes: 50 });
    expect(watchdog[1]!.evidence).toMatchObject({ claimed: 8, heldMinutes: 60 });
    expect(watchdog[0]!.fix).toContain('herald delivery release-stuck');

    const released = await run(now, 'delivery', 'release-stuck', '--json');
    expect(released.json[0]).toEqual({ released: 12, nodes: ['mta-dead'] });
    const statuses = await store()
      .db.selectFrom('delivery_logs')
      .select(['status', 'claimed_by'])
      .where('delivery_id', '=', deliveryId)
      .execute();
    // The wedged node's live claims are untouched; the dead node's messages are pending again.
    expect(statuses.filter((s) => s.status === 'sending').map((s) => s.claimed_by)).toEqual(
      Array(8).fill('mta-wedged'),
    );
    expect(statuses.filter((s) => s.status === 'pending')).toHaveLength(22);
    const again = await run(now, 'doctor', '--json');
    expect(again.findings.filter((f) => f.check === 'messages').map((f) => f.subject)).toEqual(['node mta-wedged']);
    expect((await run(now, 'delivery', 'release-stuck')).stdout).toEqual([
      'no message is stuck in sending with an expired claim',
    ]);
  });

  it('reports due messages no MTA has claimed for hours, with their count and age', async () => {
    const recipients = Array.from({ length: 15 }, (_, i) => ({ email: `d${i}@accept.test` }));
    const { deliveryId } = await seedDelivery(store().db, { now: t0, recipients, nextAttemptAt: t0 });
    const doctor = await run(t0 + 7 * hour, 'doctor', '--json', '--delivery', String(deliveryId));
    const [overdue] = doctor.findings.filter((f) => f.check === 'messages' && f.subject === `delivery ${deliveryId}`);
    expect(overdue).toMatchObject({
      severity: 'warning',
      impact: 15,
      evidence: { overdue: 15, oldestDueAt: new Date(t0).toISOString(), mtaNodes: [] },
      logs: `herald delivery logs ${deliveryId} --status pending`,
    });
    // Six hours after it was due: not yet.
    const early = await run(t0 + 5 * hour, 'doctor', '--json', '--delivery', String(deliveryId));
    expect(early.findings.filter((f) => f.check === 'messages' && f.subject === `delivery ${deliveryId}`)).toEqual([]);
  });
});
