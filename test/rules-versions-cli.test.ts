import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';

const pack = (maxConnections: number) => `rules:
  - name: example-isp
    mask: "*.mx.example-isp.test"
    maxConnections: ${maxConnections}
    maxMessagesPerHour: 500
`;

describeEachDialect('herald rules versions|update|rollback', (context) => {
  it('updates from --source, lists versions, rolls back, and reports errors clearly', async () => {
    const root = mkdtempSync(join(tmpdir(), 'herald-rules-cli-'));
    const source = join(root, 'source');
    mkdirSync(source);
    const config = {
      shaping: { siteRulesDir: join(root, 'mx') },
      bounce: { siteRulesFile: join(root, 'bounce.yaml') },
    };
    const herald = (...args: string[]) => runHerald(context.url(), args, config);

    expect((await herald('rules', 'versions', '--json')).stdout).toEqual([]);

    writeFileSync(join(source, 'mx.yaml'), pack(2));
    const first = await herald('rules', 'update', '--source', source, '--json');
    expect(first.exitCode).toBe(0);
    const [firstResult] = first.json<{
      kinds: Array<{ kind: string; outcome: string; version: string; diff: unknown }>;
    }>();
    expect(firstResult!.kinds).toMatchObject([
      { kind: 'mx', outcome: 'updated', diff: { added: ['example-isp'], removed: [], changed: [] } },
    ]);

    writeFileSync(join(source, 'mx.yaml'), pack(3));
    const second = await herald('rules', 'update', '--source', source);
    expect(second.exitCode).toBe(0);
    expect(second.stdout[0]).toMatch(
      /^mx rules: now version [0-9a-f]{16} \(#\d+, was [0-9a-f]{16}\): 1 changed \(example-isp\)$/,
    );

    const listed = (await herald('rules', 'versions', '--kind', 'mx', '--json')).json<{
      version: string;
      active: boolean;
      replacesId: number | null;
      source: string;
    }>();
    expect(listed.map((v) => v.active)).toEqual([true, false]);
    expect(listed[1]!.version).toBe(firstResult!.kinds[0]!.version);
    expect(listed[0]!.source).toBe(join(source, 'mx.yaml'));
    const table = await herald('rules', 'versions');
    expect(table.stdout[0]).toMatch(/^\* #\d+ mx /);
    expect(table.stdout[1]).toContain('1 changed (example-isp)');

    const rollback = await herald('rules', 'rollback', '--kind', 'mx', '--json');
    expect(rollback.exitCode).toBe(0);
    expect(rollback.json()[0]).toMatchObject({
      kind: 'mx',
      to: { version: firstResult!.kinds[0]!.version },
      diff: { changed: ['example-isp'] },
    });
    const afterRollback = (await herald('rules', 'versions', '--kind', 'mx', '--json')).json<{ active: boolean }>();
    expect(afterRollback.map((v) => v.active)).toEqual([false, true]);

    const noPrevious = await herald('rules', 'rollback', '--kind', 'mx');
    expect(noPrevious.exitCode).toBe(1);
    expect(noPrevious.stderr.join('\n')).toMatch(/is the first one: there is no previous version to roll back to/);
    const noBounce = await herald('rules', 'rollback', '--kind', 'bounce', '--json');
    expect(noBounce.exitCode).toBe(1);
    expect(noBounce.json()[0]).toMatchObject({
      error: { code: 'INVALID_STATE', message: expect.stringMatching(/no bounce rule version is active/) },
    });
    expect((await herald('rules', 'rollback', '--kind', 'smtp')).stderr.join('\n')).toMatch(
      /--kind: expected mx or bounce/,
    );

    writeFileSync(join(source, 'mx.yaml'), pack(0));
    const invalid = await herald('rules', 'update', '--source', source, '--json');
    expect(invalid.exitCode).toBe(1);
    expect(invalid.json()[0]).toMatchObject({
      error: {
        code: 'RULES_INVALID',
        message: expect.stringContaining(
          `${join(source, 'mx.yaml')}:4: rules[0].maxConnections: expected a positive integer`,
        ),
      },
    });
    expect((await herald('rules', 'versions', '--kind', 'mx', '--json')).json()).toHaveLength(2);

    const unconfigured = await herald('rules', 'update');
    expect(unconfigured.stderr.join('\n')).toMatch(/deliverability\.source is empty/);
  });
});
