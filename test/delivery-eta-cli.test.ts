import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { describeEachDialect } from './support/databases.ts';

// `herald delivery eta N` before sending, from the prepared logs, the MX rules in force and the MX
// hosts earlier deliveries met; the what-if options recompute without changing anything.

const now = Date.UTC(2026, 5, 1, 12);
const dir = mkdtempSync(join(tmpdir(), 'herald-eta-'));
const rulesFile = join(dir, 'mx.yaml');
writeFileSync(
  rulesFile,
  `version: 1
rules:
  - name: slowmail
    mask: "*.slowmail.test"
    maxConnections: 2
    maxMessagesPerHour: 1000
    maxMessagesPerConnection: 100
  - name: generic
    mask: "*"
    maxConnections: 10
    maxMessagesPerHour: 100000
    maxMessagesPerConnection: 100
`,
);
const csvFile = join(dir, 'list.csv');
writeFileSync(
  csvFile,
  [
    'email',
    ...Array.from({ length: 1500 }, (_, i) => `s${i}@slowmail.test`),
    ...Array.from({ length: 200 }, (_, i) => `o${i}@other.test`),
  ].join('\n'),
);
const definition = join(dir, 'delivery.yaml');
writeFileSync(definition, 'name: Eta\nfrom: news@brand.test\nsubject: Hi\ntext: Hello\nlist: eta\nvalidityHours: 1\n');

describeEachDialect('herald delivery eta', ({ store, url }) => {
  const config = {
    shaping: {
      rulesFiles: [rulesFile],
      affinities: [
        { name: 'default', addresses: [{ address: '127.0.0.1', heloName: 'out1.brand.test', publicId: 1 }] },
        { name: 'extra', addresses: [{ address: '127.0.0.2', heloName: 'out2.brand.test', publicId: 2 }] },
      ],
    },
  };
  const run = async (...args: string[]) => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const context: CliContext = {
      output: { out: (line) => stdout.push(line), err: (line) => stderr.push(line) },
      open: () =>
        openHerald({
          config: parseConfig({ ...config, database: { url: url() } }, 'test'),
          logger: silentLogger,
          clock: manualClock(now),
        }),
    };
    const exitCode = await runCli(['node', 'herald', ...args], context);
    return { exitCode, stdout, stderr, json: () => JSON.parse(stdout.find((l) => l.startsWith('{'))!) };
  };

  it('estimates the finish before sending, names the bounding rule, and recomputes a what-if', async () => {
    await run('import', 'recipients', csvFile, '--list', 'eta');
    const created = await run('delivery', 'create', '--file', definition, '--json');
    const id = String(created.json().id);
    await run('delivery', 'prepare', id);
    // An earlier delivery met slowmail.test's MX host (the hourly stats keep it).
    const earlier = (await run('delivery', 'create', '--file', definition, '--json')).json().id as number;
    await store()
      .db.insertInto('delivery_stats_hourly')
      .values({
        hour: now - 86_400_000,
        delivery_id: earlier,
        domain: 'slowmail.test',
        mx_host: 'mx1.slowmail.test',
        sent: 10,
        failed: 0,
        deferred: 0,
        updated_at: now,
      })
      .execute();

    const eta = (await run('delivery', 'eta', id, '--json')).json();
    expect(eta).toMatchObject({
      pending: 1700,
      hours: 1.5,
      finishAt: new Date(now + 1.5 * 3_600_000).toISOString(),
      boundBy: { rule: 'slowmail', rateKey: 'slowmail|id1', messagesPerHour: 1000 },
      validUntil: new Date(now + 3_600_000).toISOString(),
      expiring: 500,
      whatIf: false,
    });
    const text = await run('delivery', 'eta', id);
    expect(text.stdout[1]).toBe('bounded by MX rule "slowmail" (slowmail|id1): 1500 messages at 1000/h');
    expect(text.stdout.at(-1)).toMatch(/^500 messages cannot go before the validity ends/);

    const faster = (await run('delivery', 'eta', id, '--set', 'slowmail.maxMessagesPerHour=3000', '--json')).json();
    expect(faster).toMatchObject({ hours: 0.5, expiring: 0, whatIf: true });
    const wider = (await run('delivery', 'eta', id, '--add-affinity', 'extra', '--json')).json();
    expect(wider).toMatchObject({ hours: 0.75, boundBy: { rule: 'slowmail' } });
    // delivery show carries it (JSON `eta`, two lines of text).
    const shown = (await run('delivery', 'show', id, '--json')).json();
    expect(shown.eta).toMatchObject({ hours: 1.5, boundBy: { rule: 'slowmail' } });
    const shownText = await run('delivery', 'show', id);
    expect(shownText.stdout).toContain('bounded by MX rule "slowmail" (slowmail|id1): 1500 messages at 1000/h');
    // Nothing changed.
    expect((await run('delivery', 'eta', id, '--json')).json()).toMatchObject({ hours: 1.5 });

    const badRule = await run('delivery', 'eta', id, '--set', 'nosuch.maxMessagesPerHour=5');
    expect(badRule.exitCode).toBe(1);
    expect(badRule.stderr.join('\n')).toContain('no MX rule is called "nosuch"');
    const badAffinity = await run('delivery', 'eta', id, '--add-affinity', 'ghost');
    expect(badAffinity.stderr.join('\n')).toContain('no affinity "ghost"');

    // A delivery sending since an hour ago with 500 messages for slowmail.test on the same rate key:
    // the MTA sends them first (claims go by due time), so this one finishes half an hour later.
    await seedDelivery(store().db, {
      now: now - 3_600_000,
      recipients: Array.from({ length: 500 }, (_, i) => ({ email: `b${i}@slowmail.test` })),
    });
    const behind = (await run('delivery', 'eta', id, '--json')).json();
    expect(behind).toMatchObject({
      hours: 2,
      boundBy: { rule: 'slowmail', rateKey: 'slowmail|id1', messagesPerHour: 1000 },
      expiring: 1000,
    });
    expect(behind.groups[0]).toMatchObject({ rateKey: 'slowmail|id1', pending: 1500, ahead: 500 });
  });
});
