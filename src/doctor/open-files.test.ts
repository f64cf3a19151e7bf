import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import {
  descriptorUses,
  judgeOpenFiles,
  openFilesCheck,
  parseOpenFileLimit,
  type OpenFileLimit,
} from './check-open-files.ts';
import { readOpenFileLimit } from './open-file-limit.ts';

// The connection caps of one process's roles, added up, against its open-file limit: pure, limits passed in.

const defaults = parseConfig({}, 'test');
const known = (soft: number | 'unlimited'): OpenFileLimit => ({ kind: 'known', soft });

describe('descriptorUses', () => {
  const keys = (config: Record<string, unknown>, roles?: string[]) =>
    Object.fromEntries(
      descriptorUses(parseConfig(config, 'test'), roles).map((use) => [use.key ?? use.role, use.count]),
    );

  it.each([
    {
      name: 'every role (herald start), defaults: the listeners, the MTA, SQLite and the process',
      config: {},
      roles: undefined,
      expected: {
        'mta.maxQueued': 5_000,
        'tracking.maxConnections': 4_096,
        'api.maxConnections': 512,
        'inbound.maxClients': 50,
        process: 64,
        'database (sqlite)': 3,
      },
    },
    {
      name: 'the mid server counts on an execution instance, with the PostgreSQL pool',
      config: {
        database: { url: 'postgres://herald@db/herald' },
        midsourcing: { mode: 'execution', peers: [{ name: 'm', secret: 'a-shared-secret-of-the-pair-0123' }] },
      },
      roles: ['mid'],
      expected: { 'midsourcing.listen.maxConnections': 256, process: 64, 'database (postgres)': 10 },
    },
    {
      name: 'metrics.port counts in a process without the api role',
      config: { metrics: { port: 9100 } },
      roles: ['workflows'],
      expected: { 'metrics.maxConnections': 64, process: 64, 'database (sqlite)': 3 },
    },
    {
      name: 'metrics.port is not served beside the api (it serves /metrics itself)',
      config: { metrics: { port: 9100 } },
      roles: ['api'],
      expected: { 'api.maxConnections': 512, process: 64, 'database (sqlite)': 3 },
    },
  ])('$name', ({ config, roles, expected }) => {
    expect(keys(config, roles)).toEqual(expected);
  });
});

describe('judgeOpenFiles', () => {
  const all = descriptorUses(defaults);
  it.each([
    { name: 'a 1,024 limit under every role', uses: all, limit: known(1_024), severity: 'warning' },
    { name: 'a 1,048,576 limit', uses: all, limit: known(1_048_576), severity: undefined },
    { name: 'no limit', uses: all, limit: known('unlimited'), severity: undefined },
    {
      name: 'workflows alone under 1,024',
      uses: descriptorUses(defaults, ['workflows']),
      limit: known(1_024),
      severity: undefined,
    },
    {
      name: 'exactly at the limit',
      uses: [{ key: 'api.maxConnections', role: 'api', count: 1_024 }],
      limit: known(1_024),
      severity: undefined,
    },
    {
      name: 'one over the limit',
      uses: [{ key: 'api.maxConnections', role: 'api', count: 1_025 }],
      limit: known(1_024),
      severity: 'warning',
    },
    {
      name: 'a platform without /proc',
      uses: all,
      limit: { kind: 'unknown', reason: 'no /proc on darwin' } as const,
      severity: 'info',
    },
  ])('$name', ({ uses, limit, severity }) => {
    expect(judgeOpenFiles(uses, limit)?.severity).toBe(severity);
  });

  it('names the largest caps to lower and how to raise the limit', () => {
    const verdict = judgeOpenFiles(all, known(1_024))!;
    expect(verdict.evidence.total).toBe(9_725);
    expect(verdict.symptom).toContain('9725 file descriptors');
    expect(verdict.symptom).toContain('limit of 1024');
    expect(verdict.fix).toContain('mta.maxQueued 5000, tracking.maxConnections 4096, api.maxConnections 512');
    expect(verdict.fix).toContain('LimitNOFILE=12288');
    expect(verdict.fix).toContain('ulimit -n 12288');
  });

  it('says the check could not be made, with the sum to compare', () => {
    const verdict = judgeOpenFiles(all, { kind: 'unknown', reason: 'no /proc on darwin' })!;
    expect(verdict.symptom).toBe('the open-file limit could not be checked: no /proc on darwin');
    expect(verdict.fix).toContain('compare 9725 with `ulimit -n`');
  });
});

describe('openFilesCheck', () => {
  it('is one finding about the roles, or none without facts', () => {
    const snapshot = { openFiles: { roles: 'all', uses: descriptorUses(defaults), limit: known(1_024) } };
    const findings = openFilesCheck.run(snapshot as never, 0, {} as never);
    expect(findings.map((f) => [f.check, f.severity, f.subject])).toEqual([
      ['open-files', 'warning', 'herald start --roles all'],
    ]);
    expect(openFilesCheck.run({} as never, 0, {} as never)).toEqual([]);
  });
});

describe('parseOpenFileLimit', () => {
  const limits = (soft: string, hard: string) =>
    [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max processes             63432                63432                processes ',
      `Max open files            ${soft.padEnd(21)}${hard.padEnd(21)}files     `,
      'Max locked memory         8388608              8388608              bytes     ',
    ].join('\n');
  it.each([
    { text: limits('1024', '524288'), expected: known(1_024) },
    { text: limits('unlimited', 'unlimited'), expected: known('unlimited') },
    { text: 'Max processes 5 5 processes', expected: { kind: 'unknown', reason: 'no "Max open files" line' } },
  ])('$expected.kind $expected.soft', ({ text, expected }) => {
    expect(parseOpenFileLimit(text)).toEqual(expected);
  });
});

describe('readOpenFileLimit', () => {
  it('reads this process limit on Linux, and says why elsewhere', async () => {
    if (process.platform === 'linux') expect((await readOpenFileLimit()).kind).toBe('known');
    expect(await readOpenFileLimit('darwin')).toEqual({
      kind: 'unknown',
      reason: 'the limit is read from /proc/self/limits, which darwin does not have',
    });
    expect((await readOpenFileLimit('linux', '/proc/self/no-such-file')).kind).toBe('unknown');
  });
});
