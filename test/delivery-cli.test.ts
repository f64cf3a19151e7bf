import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';
import { insertList } from './support/fixtures.ts';

describeEachDialect('herald delivery', (context) => {
  it('creates, prepares, starts, shows and stops a delivery', async () => {
    await insertList(context.store(), 'cli', [
      { email: 'a@accept.test', data: { first_name: 'Ann' } },
      { email: 'b@accept.test', data: {} },
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
    const file = join(dir, 'delivery.yaml');
    writeFileSync(
      file,
      'name: CLI\nfrom: News <news@herald.test>\nsubject: \'Hi {{ first_name | default: "there" }}\'\ntext: Hello\nlist: cli\n',
    );
    const created = await runHerald(context.url(), ['delivery', 'create', '--file', file, '--json']);
    expect(created.stderr).toEqual([]);
    expect(created.exitCode).toBe(0);
    const [delivery] = created.json<{ id: number; state: string }>();
    expect(delivery).toMatchObject({ state: 'edited' });
    const id = String(delivery!.id);

    const prepared = await runHerald(context.url(), ['delivery', 'prepare', id, '--json']);
    expect(prepared.json()[0]).toMatchObject({ kind: 'prepared', counts: { target: 2, prepared: 2 } });

    const refused = await runHerald(context.url(), ['delivery', 'resume', id, '--json']);
    expect(refused.exitCode).toBe(1);
    expect(refused.json()[0]).toMatchObject({ error: { code: 'INVALID_STATE' } });

    const started = await runHerald(context.url(), ['delivery', 'start', id, '--json']);
    expect(started.json()[0]).toMatchObject({ state: 'in_progress', validUntil: expect.any(String) });

    const stopped = await runHerald(context.url(), ['delivery', 'stop', id]);
    expect(stopped.stdout).toEqual([`delivery ${id} is stopped`]);

    const shown = await runHerald(context.url(), ['delivery', 'show', id, '--json']);
    expect(shown.json()[0]).toMatchObject({ state: 'stopped', total: 2, cancelled: 2, pending: 0 });
  });

  it('rejects bad flags with the flag named', async () => {
    const run = await runHerald(context.url(), [
      'delivery',
      'create',
      '--name',
      'x',
      '--from',
      'not an address',
      '--subject',
      'Hi',
      '--json',
    ]);
    expect(run.exitCode).toBe(1);
    expect(run.stderr.join('\n')).toMatch(/from: "not an address" is not an address/);
  });

  it('sets priority and weight at creation and while the delivery runs, refusing bad values with nothing changed', async () => {
    const text = join(mkdtempSync(join(tmpdir(), 'herald-cli-')), 'body.txt');
    writeFileSync(text, 'Hello');
    const create = (name: string, priority: string) => [
      ...['delivery', 'create', '--name', name, '--from', 'news@herald.test', '--subject', 'Hi'],
      ...['--text-file', text, '--priority', priority],
    ];
    const created = await runHerald(context.url(), [...create('urgent', '8'), '--json']);
    const [delivery] = created.json<{ id: number; priority: number; weight: number }>();
    expect(delivery).toMatchObject({ priority: 8, weight: 1 });
    const id = String(delivery!.id);

    const changed = await runHerald(context.url(), ['delivery', 'priority', id, '--weight', '4']);
    expect(changed.stdout).toEqual([`delivery ${id}: priority 8, weight 4`]);
    for (const [args, message] of [
      [['--priority', '10'], /priority: expected an integer from 0 to 9, got 10/],
      [['--weight', 'x'], /--weight: expected a whole number, got "x"/],
      [['--weight', '0', '--priority', '3'], /weight: expected an integer from 1 to 100, got 0/],
      [[], /give a priority \(0–9\), a weight \(1–100\) or both/],
    ] as const) {
      const refused = await runHerald(context.url(), ['delivery', 'priority', id, ...args]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr.join('\n')).toMatch(message);
    }
    const shown = await runHerald(context.url(), ['delivery', 'show', id, '--json']);
    expect(shown.json()[0]).toMatchObject({ priority: 8, weight: 4 });
    const badCreate = await runHerald(context.url(), create('y', '12'));
    expect(badCreate.exitCode).toBe(1);
    expect(badCreate.stderr.join('\n')).toMatch(/--priority:/);
  });
});
