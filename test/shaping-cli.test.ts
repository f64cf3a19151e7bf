import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../src/cli/context.ts';
import { runCli } from '../src/cli/main.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { createShapingRuntime } from '../src/shaping/runtime.ts';
import { describeEachDialect } from './support/databases.ts';

const now = Date.parse('2026-08-01T12:00:00Z');
const defaults = { connectTimeoutMs: 30_000, commandTimeoutMs: 60_000, dataTimeoutMs: 600_000, opportunisticTls: true };

function cli(databaseUrl = 'sqlite::memory:', shaping: Record<string, unknown> = {}) {
  const lines: string[] = [];
  const errors: string[] = [];
  const context: CliContext = {
    output: { out: (line) => lines.push(line), err: (line) => errors.push(line) },
    open: () =>
      openHerald({
        config: parseConfig({ database: { url: databaseUrl }, shaping }, 'test'),
        logger: silentLogger,
        clock: manualClock(now),
      }),
  };
  return { lines, errors, run: (...args: string[]) => runCli(['node', 'herald', ...args], context) };
}

describe('herald rules check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-rules-'));
  const good = join(dir, 'site.yaml');
  writeFileSync(
    good,
    'rules:\n  - name: partner\n    mask: "mx.partner.test"\n    maxConnections: 1\n    maxMessagesPerHour: 100\n',
  );
  const bad = join(dir, 'bad.yaml');
  writeFileSync(
    bad,
    'rules:\n  - name: partner\n    mask: "mx.partner.test"\n    maxConnections: 1.5\n    maxMessagesPerHour: 100\n    shraed: true\n',
  );

  it('accepts a valid override layered over the shipped pack', async () => {
    const { lines, run } = cli();
    expect(await run('rules', 'check', good, '--json')).toBe(0);
    const result = JSON.parse(lines[0]!);
    expect(result.ok).toBe(true);
    expect(result.layered.rules.at(-2)).toBe('partner');
    expect(result.layered.rules.at(-1)).toBe('generic');
  });

  it('exits 1 with file:line errors, and refuses an override alone without a generic rule', async () => {
    const { errors, run } = cli();
    expect(await run('rules', 'check', bad)).toBe(1);
    expect(errors).toEqual([
      `${bad}:4: rules[0].maxConnections: expected a positive integer`,
      `${bad}:6: rules[0].shraed: unknown key`,
    ]);
    const standalone = cli();
    expect(await standalone.run('rules', 'check', '--standalone', good)).toBe(1);
    expect(standalone.errors[0]).toContain('no generic rule');
  });
});

describeEachDialect('herald mx', (context) => {
  it('stats shows load, the binding limit, waiting messages, backoffs and suspensions written by an MTA node', async () => {
    const clock = manualClock(now);
    const herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock,
    });
    const runtime = await createShapingRuntime({
      config: herald.config.shaping,
      defaults,
      clock,
      logger: silentLogger,
      nodeId: 'mta-1',
      store: herald.store,
    });
    const { shaper } = runtime;
    const path = { mxHost: 'mta5.am0.yahoodns.net', mxIp: '198.51.100.7', publicId: 1 };
    const leases = [];
    for (let i = 0; i < 5; i += 1) leases.push(await shaper.acquireConnection(path));
    expect(leases.map((l) => l.kind)).toEqual(['granted', 'granted', 'granted', 'granted', 'wait']);
    for (let i = 0; i < 10; i += 1)
      shaper.recordReply(path, 'yahoo.com', { code: 250, enhanced: '2.0.0', text: 'ok dirdel' });
    shaper.recordReply(path, 'yahoo.com', {
      code: 421,
      enhanced: '4.7.0',
      text: '[TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1',
    });
    shaper.reportWaiting(path, 42);
    const blocked = { mxHost: 'mx.blocked.test', mxIp: '192.0.2.9', publicId: 1 };
    for (let i = 0; i < 300; i += 1)
      shaper.recordReply(blocked, 'blocked.test', {
        code: 550,
        enhanced: '5.7.1',
        text: 'Service unavailable; client host blocked',
      });
    expect(shaper.checkDomain('blocked.test').kind).toBe('suspended');
    await runtime.writeSnapshot();
    await runtime.stop();
    await herald.close();

    const { lines, run } = cli(context.url());
    expect(await run('mx', 'stats', '--json')).toBe(0);
    const view = JSON.parse(lines[0]!);
    expect(view.nodes).toMatchObject([{ nodeId: 'mta-1', backend: 'memory' }]);
    expect(view.paths.find((p: { pathId: string }) => p.pathId.startsWith('yahoo'))).toMatchObject({
      pathId: 'yahoo-aol|1|198.51.100.7',
      openConnections: 4,
      messages: 10,
      deferrals: { '4xx': 1 },
      waiting: 42,
      binding: 'maxConnections',
      limits: { maxConnections: 4, maxMessagesPerHour: 3_000, configuredMaxMessagesPerHour: 6_000 },
    });
    expect(view.suspensions[0]).toMatchObject({
      domain: 'blocked.test',
      nodeId: 'mta-1',
      evidence: { messages: 300, errors: 300 },
    });
    expect(view.rules.find((r: { rule: string }) => r.rule === 'yahoo-aol')).toMatchObject({
      rateKey: 'yahoo-aol|id1',
      waiting: 42,
      backoffs: ['rate-limited-421'],
    });
    expect(view.backoffs[0]).toMatchObject({ rule: 'rate-limited-421', factor: 0.5, nodeId: 'mta-1' });

    const text = cli(context.url());
    expect(await text.run('mx', 'stats')).toBe(0);
    const output = text.lines.join('\n');
    expect(output).toContain('yahoo-aol|id1');
    expect(output).toContain('4/4 connections open');
    expect(output).toContain('rate-limited-421: rate x0.5');
    expect(output).toContain('421 4.7.0 [TSS04]');
    expect(output).toMatch(/blocked\.test \[mta-1\] until .*: 300 errors in 300 messages \(100%\)/);
  });

  it("stats still shows the nodes' snapshots when Redis does not answer, and says so without its password", async () => {
    const { lines, run } = cli(context.url(), { redisUrl: 'redis://:hunter2@127.0.0.1:1/0' });
    expect(await run('mx', 'stats', '--json')).toBe(0);
    const view = JSON.parse(lines[0]!);
    expect(view.nodes).toEqual(expect.any(Array));
    expect(view.sharedConnections).toBeUndefined();
    expect(view.sharedConnectionsError).toContain('127.0.0.1:1');
    expect(lines[0]).not.toContain('hunter2');
    const text = cli(context.url(), { redisUrl: 'redis://:hunter2@127.0.0.1:1/0' });
    expect(await text.run('mx', 'stats')).toBe(0);
    const output = text.lines.join('\n');
    expect(output).toContain('connections open across all nodes (Redis): unknown');
    expect(output).not.toContain('hunter2');
  });

  // Number("5m") is NaN: the command read no snapshot and said no MTA had run, with nodes sending.
  it('refuses a --max-age or --public-id that is not a number instead of answering for none', async () => {
    for (const args of [
      ['mx', 'stats', '--max-age', '5m'],
      ['mx', 'stats', '--max-age', '-1'],
      ['mx', 'match', 'mx.example.test', '--public-id', 'one'],
    ]) {
      const { lines, errors, run } = cli(context.url());
      expect(await run(...args)).not.toBe(0);
      expect(lines).toEqual([]);
      expect(errors.join('\n')).toMatch(/--max-age|--public-id/);
    }
  });

  it('match names the rule an MX host falls under', async () => {
    const { lines, run } = cli(context.url());
    expect(await run('mx', 'match', 'alt1.gmail-smtp-in.l.google.com', '--json')).toBe(0);
    expect(JSON.parse(lines[0]!)).toMatchObject({ rule: 'google', maxConnections: 10, maxMessagesPerHour: 20_000 });
  });
});
