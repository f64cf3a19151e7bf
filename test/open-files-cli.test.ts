import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOpenFileLimit } from '../src/doctor/open-file-limit.ts';
import { runHerald } from './support/cli.ts';

// The connection caps of the roles of one process, added up past its open-file limit: named by
// `herald doctor` and by `herald start` before it listens. The caps are set just over the limit this
// test process has (a child `herald start` from the same shell has the same).

const limit = await readOpenFileLimit();
const soft = limit.kind === 'known' && limit.soft !== 'unlimited' ? limit.soft : undefined;

describe.skipIf(soft === undefined)('open-file limit', () => {
  const over = { tracking: { maxConnections: (soft ?? 0) + 1 } };
  /** Holds the tracking port, so `herald start` stops after its warnings, as it listens. */
  let taken: Server;
  let port: number;
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening));
    port = (taken.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((closed) => taken.close(() => closed())));

  it('herald doctor reports the caps over the limit, the largest first, with how to raise it', async () => {
    const run = await runHerald('sqlite::memory:', ['doctor', '--json'], over);
    const [report] = run.json<{ checks: string[]; findings: Array<Record<string, unknown>> }>();
    expect(report!.checks).toContain('open-files');
    const finding = report!.findings.find((f) => f.check === 'open-files');
    expect(finding).toMatchObject({
      severity: 'warning',
      subject: 'herald start --roles all',
      symptom: expect.stringContaining(`over this process's open-file limit of ${soft}`),
      fix: expect.stringContaining(
        `lower the largest caps (tracking.maxConnections ${(soft ?? 0) + 1}, mta.maxQueued 5000`,
      ),
    });
    expect(finding!.fix).toContain('LimitNOFILE=');
  });

  it('herald doctor --roles counts only the roles named: the tracking cap is not the MTA’s problem', async () => {
    const mta = await runHerald('sqlite::memory:', ['doctor', '--roles', 'mta,inbound', '--json'], over);
    const [report] = mta.json<{ findings: Array<{ check: string }> }>();
    expect(report!.findings.some((f) => f.check === 'open-files')).toBe(5_000 + 50 + 3 + 64 > (soft ?? 0));
    const tracking = await runHerald('sqlite::memory:', ['doctor', '--roles', 'tracking', '--json'], over);
    const [trackingReport] = tracking.json<{ findings: Array<Record<string, unknown>> }>();
    expect(trackingReport!.findings.find((f) => f.check === 'open-files')).toMatchObject({
      subject: 'herald start --roles tracking',
    });
    const unknown = await runHerald('sqlite::memory:', ['doctor', '--roles', 'mtaa', '--json']);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr.join('\n')).toContain('unknown role mtaa');
  });

  it('herald doctor says nothing of it with the default caps under the limit', async () => {
    const run = await runHerald('sqlite::memory:', ['doctor', '--json']);
    const [report] = run.json<{ findings: Array<{ check: string }> }>();
    const sum = 4_096 + 512 + 50 + 5_000 + 3 + 64;
    expect(report!.findings.some((f) => f.check === 'open-files')).toBe(sum > (soft ?? 0));
  });

  it('herald start warns on stderr before it listens, counting only the roles it runs', async () => {
    const run = await runHerald('sqlite::memory:', ['start', '--roles', 'tracking'], {
      tracking: { ...over.tracking, port },
    });
    const stderr = run.stderr.join('\n');
    expect(stderr).toContain(`warning: the connection caps add up to ${(soft ?? 0) + 1 + 3 + 64} file descriptors`);
    expect(stderr).toMatch(/fix: lower the largest caps \(tracking\.maxConnections \d+\)/);
    // Then the port taken stops it, as it would have without the warning.
    expect(run.exitCode).toBe(1);
    const quiet = await runHerald('sqlite::memory:', ['start', '--roles', 'tracking'], { tracking: { port } });
    expect(quiet.stderr.join('\n')).not.toContain('file descriptors');
  });
});
