import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';

describe('herald config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-config-'));

  it('rejects an unknown key, naming it', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'mta:\n  maxConnectionPerMx: 3\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check', '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json()[0]).toMatchObject({
      error: { code: 'CONFIG_INVALID', message: expect.stringContaining('unknown key mta.maxConnectionPerMx') },
    });
  });

  it('refuses a "billion laughs" file (nested YAML aliases), naming the file and line', async () => {
    const file = join(dir, 'laughs.yaml');
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const name of 'bcdef')
      levels.push(
        `${name}: &${name} [${Array(9)
          .fill(`*${levels.length === 1 ? 'a' : String.fromCharCode(name.charCodeAt(0) - 1)}`)
          .join(', ')}]`,
      );
    writeFileSync(file, `${levels.join('\n')}\n`);
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check', '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json()[0]).toMatchObject({
      error: {
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/laughs\.yaml:2: YAML aliases .* expand to more than 100 nodes/),
      },
    });
  });

  it('says why a config file cannot be read: missing (with the path looked at), a directory', async () => {
    const missing = await runHerald('sqlite::memory:', ['--config', join(dir, 'nope.yaml'), 'config', 'check']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr.join('\n')).toContain(
      `error: CONFIG_INVALID: cannot read config file ${join(dir, 'nope.yaml')}: no such file`,
    );
    const relative = await runHerald('sqlite::memory:', ['--config', 'nope-here.yaml', 'config', 'check']);
    expect(relative.stderr.join('\n')).toContain(
      `cannot read config file nope-here.yaml: no such file (looked for ${join(process.cwd(), 'nope-here.yaml')})`,
    );
    const folder = await runHerald('sqlite::memory:', ['--config', dir, 'config', 'check']);
    expect(folder.stderr.join('\n')).toContain(`cannot read config file ${dir}: it is a directory`);
  });

  it('reports a wrong value with its path', async () => {
    const file = join(dir, 'value.yaml');
    writeFileSync(file, 'mta:\n  maxConnectionsPerMx: -1\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check']);
    expect(run.stderr.join('\n')).toMatch(/mta\.maxConnectionsPerMx: Number must be greater than or equal to 1/);
  });

  it('checks workflow overrides and the time zone as herald start does, naming the file and key', async () => {
    const cases = [
      [
        'overrides:\n    cleanupp: { schedule: "30 2 * * *" }',
        /workflows\.overrides\.cleanupp: no such workflow \(known: cleanup,/,
      ],
      [
        'overrides:\n    cleanup: { schedule: "61 4 * * *" }',
        /workflows\.overrides\.cleanup\.schedule: invalid schedule "61 4/,
      ],
      ['timezone: Mars/Olympus', /workflows\.timezone: unknown time zone "Mars\/Olympus"/],
    ] as const;
    for (const [yaml, expected] of cases) {
      const file = join(dir, 'workflows.yaml');
      writeFileSync(file, `workflows:\n  ${yaml}\n`);
      const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check', '--json']);
      expect(run.exitCode, yaml).toBe(1);
      const error = run.json<{ error: { code: string; message: string } }>()[0]!.error;
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toMatch(expected);
      expect(error.message.startsWith(`${file}: `)).toBe(true);
    }
  });

  it('caps the preparation batch below what SQLite can bind in one statement', async () => {
    const file = join(dir, 'batch.yaml');
    writeFileSync(file, 'delivery:\n  preparationBatchSize: 40000\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr.join('\n')).toMatch(/delivery\.preparationBatchSize: Number must be less than or equal to 30000/);
  });

  it('shows the effective configuration with secrets masked', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'database:\n  url: "postgres://herald:hunter2@db.example/herald"\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'show', '--json']);
    const [shown] = run.json<{ database: { url: string }; mta: { maxConnectionsPerMx: number } }>();
    expect(shown!.database.url).toBe('postgres://herald:***@db.example/herald');
    expect(run.stdout.join('')).not.toContain('hunter2');
    expect(shown!.mta.maxConnectionsPerMx).toBe(10);
  });

  it('masks secrets everywhere: query-string credentials, webhook URL paths, ?password= in database URLs', async () => {
    const file = join(dir, 'hidden.yaml');
    writeFileSync(
      file,
      [
        'database:',
        '  url: "postgres://herald@db.example/herald?password=hunter2&sslmode=require"',
        'shaping:',
        '  redisUrl: "redis://:redispass1@cache.example:6379/0?token=redistoken1"',
        'workflows:',
        '  webhookUrl: "https://hooks.slack.example/services/T0001/B0001/hooksecret1?sig=hooksig1"',
        'deliverability:',
        '  source: "https://rules.example/packs/manifest.json?access_token=ruletoken1&ref=main"',
        'tracking:',
        '  baseUrl: "https://t.brand.example/?x=1"',
        '  keys: [{ id: k1, secret: "trackingsecret1-0123456789", createdAt: "2026-01-01" }]',
        'midsourcing:',
        '  peers: [{ name: exec-1, url: "https://exec.example:8025/?api_key=peerkey1", secret: "peersecret1-0123456789" }]',
        '',
      ].join('\n'),
    );
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'show', '--json']);
    expect(run.exitCode).toBe(0);
    const printed = run.stdout.join('');
    for (const secret of [
      'hunter2',
      'redispass1',
      'redistoken1',
      'hooksecret1',
      'T0001',
      'hooksig1',
      'ruletoken1',
      'trackingsecret1',
      'peerkey1',
      'peersecret1',
    ])
      expect(printed, secret).not.toContain(secret);
    const [shown] = run.json<{
      database: { url: string };
      workflows: { webhookUrl: string };
      deliverability: { source: string };
      tracking: { baseUrl: string };
    }>();
    // What is not secret stays readable.
    expect(shown!.database.url).toBe('postgres://herald@db.example/herald?password=***&sslmode=require');
    expect(shown!.workflows.webhookUrl).toBe('https://hooks.slack.example/***?***');
    expect(shown!.deliverability.source).toBe('https://rules.example/packs/manifest.json?access_token=***&ref=main');
    expect(shown!.tracking.baseUrl).toBe('https://t.brand.example/?x=1');
  });
});
