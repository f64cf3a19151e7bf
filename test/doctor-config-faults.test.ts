import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Finding } from '../src/doctor/finding.ts';
import { openHerald } from '../src/main.ts';
import { insertOutbound, markDeliveryPushed, planParts, updatePart } from '../src/midsourcing/outbound-store.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { applyAddressEvents } from '../src/quarantine/address-events.ts';
import { quarantineSettings } from '../src/quarantine/settings.ts';
import { describeEachDialect } from './support/databases.ts';

// The doctor on faults that live in the configuration, the audience and the content, injected the
// way an operator makes them: a herald.yaml naming what does not exist, a CSV and a template that do
// not fit, a quarantine holding much of a list, a workflow paused and forgotten. Everything goes
// through the real commands (import, delivery create/prepare/start, workflows pause, doctor).

const now = Date.UTC(2026, 5, 1, 12);
const day = 86_400_000;

interface Run {
  exitCode: number;
  stdout: string[];
  stderr: string[];
  findings: Finding[];
  json<T = Record<string, unknown>>(): T[];
}

function herald(url: string, config: Record<string, unknown> = {}, clock = manualClock(now)) {
  return async (...args: string[]): Promise<Run> => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const context: CliContext = {
      output: { out: (line) => stdout.push(line), err: (line) => stderr.push(line) },
      open: () =>
        openHerald({
          config: parseConfig({ ...config, database: { url } }, 'test'),
          logger: silentLogger,
          clock,
        }),
    };
    const exitCode = await runCli(['node', 'herald', ...args], context);
    const json = <T>() => stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as T);
    const doctor = json<{ findings?: Finding[] }>().find((value) => Array.isArray(value.findings));
    return { exitCode, stdout, stderr, json, findings: doctor?.findings ?? [] };
  };
}

const dir = mkdtempSync(join(tmpdir(), 'herald-doctor-faults-'));
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function csv(name: string, rows: string[], header = 'email,first_name'): string {
  return file(name, [header, ...rows].join('\n'));
}

async function createDelivery(run: ReturnType<typeof herald>, definition: Record<string, string>): Promise<string> {
  const yaml = Object.entries(definition)
    .map(([key, value]) => `${key}: ${JSON.stringify(value)}`)
    .join('\n');
  const created = await run('delivery', 'create', '--file', file(`${definition.name}.yaml`, yaml), '--json');
  expect(created.stderr).toEqual([]);
  return String(created.json<{ id: number }>()[0]!.id);
}

const people = (domain: string, n: number, prefix = 'p') =>
  Array.from({ length: n }, (_, i) => `${prefix}${i}@${domain},Pat`);

describeEachDialect('herald doctor on configuration, audience and content faults', ({ store, url }) => {
  it('names an affinity, a source address and a mid-sourcing peer the configuration does not define', async () => {
    const config = {
      shaping: {
        affinities: [
          {
            name: 'bulk',
            addresses: [
              { address: '127.0.0.1', heloName: 'out1.brand.test', publicId: 1 },
              { address: '192.0.2.55', heloName: 'out2.brand.test', publicId: 2 },
            ],
          },
        ],
      },
      midsourcing: {
        mode: 'marketing',
        peers: [{ name: 'exec-1', url: 'http://127.0.0.1:9', secret: 'a-shared-secret-of-the-pair' }],
      },
    };
    const run = herald(url(), config);
    await run('import', 'recipients', csv('refs.csv', people('accept.test', 20)), '--list', 'refs');
    const ids: string[] = [];
    for (const [name, affinity] of [
      ['promo-affinity', 'promo'],
      ['bulk-affinity', 'bulk'],
      ['pushed', 'bulk'],
    ] as const) {
      const id = await createDelivery(run, {
        name,
        from: 'news@brand.test',
        subject: 'Hi {{ first_name }}',
        text: 'Hello',
        list: 'refs',
        affinity,
      });
      expect((await run('delivery', 'prepare', id)).exitCode).toBe(0);
      expect((await run('delivery', 'start', id)).exitCode).toBe(0);
      ids.push(id);
    }
    // A push recorded to a peer that was renamed in the configuration since.
    await store()
      .db.updateTable('deliveries')
      .set({ execution_peer: 'exec-old' })
      .where('id', '=', Number(ids[2]))
      .execute();

    const doctor = await run('doctor', '--json');
    const refs = doctor.findings.filter((f) => f.check === 'references');
    expect(refs.map((f) => [f.subject, f.severity])).toEqual(
      expect.arrayContaining([
        [`delivery ${ids[0]}`, 'critical'],
        [`delivery ${ids[1]}`, 'warning'],
        [`delivery ${ids[2]}`, 'critical'],
      ]),
    );
    expect(refs).toHaveLength(3);
    const about = (id: string) => refs.find((f) => f.subject === `delivery ${id}`)!;
    expect(about(ids[0]!).evidence).toMatchObject({ affinity: 'promo', configuredAffinities: ['bulk'], pending: 20 });
    expect(about(ids[0]!).fix).toContain('shaping.affinities');
    expect(about(ids[1]!).evidence.missingAddresses).toEqual(['192.0.2.55']);
    expect(about(ids[2]!).evidence).toMatchObject({ peer: 'exec-old', configuredPeers: ['exec-1'] });
    expect(doctor.exitCode).toBe(1);
  });

  it('names heavy content, the field and recipient that broke preparation, and target exclusions', async () => {
    const run = herald(url());
    await run('import', 'recipients', csv('content.csv', people('accept.test', 30, 'c')), '--list', 'content');
    const links = Array.from({ length: 60 }, (_, i) => `<a href="https://brand.test/p/${i}">offer ${i}</a>`).join('\n');
    const heavy = await createDelivery(run, {
      name: 'heavy',
      from: 'news@brand.test',
      subject: 'Hi',
      htmlFile: file(
        'heavy.html',
        `<html><body>${links}<div style="color:#123456">${'x'.repeat(150_000)}</div></body></html>`,
      ),
      list: 'content',
    });
    await run('delivery', 'prepare', heavy);
    await run('delivery', 'start', heavy);

    // The list was built from two files: the first has a city column (delivery create checks the
    // template against the list's first recipient), the second, imported later, does not.
    await run(
      'import',
      'recipients',
      csv('city.csv', ['first@accept.test,Pat,Paris'], 'email,first_name,city'),
      '--list',
      'nocity',
    );
    await run('import', 'recipients', csv('nocity.csv', people('accept.test', 5, 'n')), '--list', 'nocity');
    const broken = await createDelivery(run, {
      name: 'broken',
      from: 'news@brand.test',
      subject: 'Hi {{ first_name }}',
      html: '<p>News from {{ city }}</p>',
      list: 'nocity',
    });
    expect((await run('delivery', 'prepare', broken)).exitCode).not.toBe(0);

    // A third of a list is quarantined or denylisted (earlier bounces and complaints); another list entirely.
    await run('import', 'recipients', csv('stale.csv', people('accept.test', 30, 's')), '--list', 'stale');
    await run('import', 'recipients', csv('gone.csv', people('accept.test', 4, 'g')), '--list', 'gone');
    const blocked = [
      ...Array.from({ length: 8 }, (_, i) => ({ email: `s${i}@accept.test`, action: 'quarantine' as const })),
      ...Array.from({ length: 2 }, (_, i) => ({ email: `s${10 + i}@accept.test`, action: 'denylist' as const })),
      ...Array.from({ length: 4 }, (_, i) => ({ email: `g${i}@accept.test`, action: 'denylist' as const })),
    ];
    const settings = quarantineSettings(parseConfig({}, 'test'));
    await applyAddressEvents(
      store(),
      blocked.map(({ email, action }) => ({ email, at: now - day, source: 'operator', action, note: 'test' })),
      settings,
      now - day,
    );
    const stale = await createDelivery(run, {
      name: 'stale',
      from: 'news@brand.test',
      subject: 'Hi',
      text: 'Hello',
      list: 'stale',
    });
    await run('delivery', 'prepare', stale);
    const gone = await createDelivery(run, {
      name: 'gone',
      from: 'news@brand.test',
      subject: 'Hi',
      text: 'Hello',
      list: 'gone',
    });
    await run('delivery', 'prepare', gone);

    const doctor = await run('doctor', '--json');
    const about = (id: string, check: string) =>
      doctor.findings.filter((f) => f.subject === `delivery ${id}` && f.check === check);
    expect(about(heavy, 'content')).toEqual([
      expect.objectContaining({ severity: 'warning', evidence: expect.objectContaining({ links: 60 }) }),
    ]);
    expect(about(heavy, 'content')[0]!.symptom).toMatch(/the HTML weighs 1\d\d KB/);
    const [preparation] = about(broken, 'preparation');
    expect(preparation).toMatchObject({
      severity: 'critical',
      evidence: { template: 'html', field: 'city', recipient: 'n0@accept.test' },
    });
    expect(preparation!.fix).toContain(`herald delivery prepare ${broken}`);
    expect(about(stale, 'target')).toEqual([
      expect.objectContaining({
        severity: 'warning',
        impact: 10,
        evidence: expect.objectContaining({
          target: 30,
          share: 0.333,
          exclusions: expect.objectContaining({ quarantined: 8, denylisted: 2 }),
        }),
      }),
    ]);
    expect(about(gone, 'target')).toEqual([expect.objectContaining({ severity: 'critical', impact: 4 })]);
  });

  it('counts case variants of an address as duplicates removed, reported by import, preparation and the doctor', async () => {
    const run = herald(url());
    // 30 mailboxes, 10 of them twice under another spelling (a second source concatenated).
    const rows = [...people('accept.test', 30, 'v'), ...Array.from({ length: 10 }, (_, i) => `V${i}@Accept.Test,Pat`)];
    const imported = await run('import', 'recipients', csv('variants.csv', rows), '--list', 'variants', '--json');
    expect(imported.json()[0]).toMatchObject({ read: 40, imported: 40, repeated: 10 });
    expect(imported.json<{ repeats: unknown[] }>()[0]!.repeats[0]).toEqual({
      line: 32,
      email: 'V0@accept.test',
      firstLine: 2,
    });
    const id = await createDelivery(run, {
      name: 'variants',
      from: 'news@brand.test',
      subject: 'Hi',
      text: 'Hello',
      list: 'variants',
    });
    const prepared = await run('delivery', 'prepare', id, '--json');
    expect(prepared.json()[0]).toMatchObject({ counts: { target: 40, prepared: 30, excluded: { duplicate: 10 } } });
    const doctor = await run('doctor', '--json', '--delivery', id);
    expect(doctor.findings).toEqual([
      expect.objectContaining({
        check: 'target',
        severity: 'warning',
        impact: 10,
        evidence: expect.objectContaining({ share: 0.25, exclusions: expect.objectContaining({ duplicate: 10 }) }),
      }),
    ]);
  });

  it('reports a workflow paused for days, from the day an operator paused it', async () => {
    const clock = manualClock(now - 3 * day);
    const run = herald(url(), {}, clock);
    expect((await run('workflows', 'pause', 'cleanup')).exitCode).toBe(0);
    clock.set(now);
    const doctor = await run('doctor', '--json');
    const paused = doctor.findings.filter((f) => f.subject === 'workflow cleanup');
    expect(paused).toEqual([
      expect.objectContaining({
        check: 'workflows',
        severity: 'warning',
        evidence: expect.objectContaining({ pausedHours: 72 }),
      }),
    ]);
    expect(paused[0]!.fix).toContain('herald workflows resume cleanup');
    expect((await run('workflows', 'resume', 'cleanup')).exitCode).toBe(0);
  });

  it('says which side of a slow mid-sourcing push is slow, from the figures the push records per part', async () => {
    const peers = [
      { name: 'exec-1', url: 'http://127.0.0.1:9', secret: 'a-shared-secret-of-the-pair' },
      { name: 'exec-2', url: 'http://127.0.0.1:9', secret: 'another-shared-secret-pair' },
    ];
    const run = herald(url(), { midsourcing: { mode: 'marketing', peers } });
    const pushes: Array<[string, number, number]> = [
      ['exec-1', 12_000, 400], // reading the parts takes 12 s on this (marketing) instance
      ['exec-2', 300, 9_000], // the execution instance takes 9 s to append each part
    ];
    const ids: number[] = [];
    for (const [peer, buildMs, appendMs] of pushes) {
      const recipients = Array.from({ length: 40 }, (_, i) => ({ email: `m${i}@${peer}.test` }));
      const { deliveryId } = await seedDelivery(store().db, { now: now - 600_000, recipients, state: 'prepared' });
      await markDeliveryPushed(store(), deliveryId, { peer, from: ['prepared'], now: now - 600_000 });
      await insertOutbound(store(), deliveryId, peer, now - 600_000);
      await planParts(store(), deliveryId, 10, now - 600_000);
      for (const part of [1, 2])
        await updatePart(store(), deliveryId, part, {
          state: 'acked',
          attempts: 1,
          build_ms: buildMs,
          latency_ms: appendMs,
          acked_at: now - 60_000,
          updated_at: now - 60_000,
        });
      ids.push(deliveryId);
    }
    const doctor = await run('doctor', '--json');
    const mid = (id: number) =>
      doctor.findings.filter((f) => f.check === 'midsourcing' && f.subject === `delivery ${id}`);
    expect(mid(ids[0]!)).toEqual([
      expect.objectContaining({
        severity: 'warning',
        evidence: expect.objectContaining({ side: 'marketing', buildMsAvg: 12_000 }),
      }),
    ]);
    expect(mid(ids[0]!)[0]!.fix).toContain('herald db maintain');
    expect(mid(ids[1]!)).toEqual([
      expect.objectContaining({
        severity: 'warning',
        evidence: expect.objectContaining({ side: 'execution', appendMsAvg: 9_000 }),
      }),
    ]);
    expect(mid(ids[1]!)[0]!.fix).toContain('on exec-2');
  });
});
