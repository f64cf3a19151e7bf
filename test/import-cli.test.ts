import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';

const dir = mkdtempSync(join(tmpdir(), 'herald-import-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function csv(name: string, content: string | Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

describeEachDialect('herald import', (context) => {
  // 30 rows, every 10th (lines 2, 12, 22, 32) with no @; 25 rejected in a second file to test truncation.
  const rows = ['email,first_name'];
  for (let i = 0; i < 30; i++) rows.push(i % 10 === 0 ? `bad${i}.example.com,B${i}` : `user${i}@example.com,U${i}`);
  const file = csv('people.csv', `${rows.join('\n')}\n`);

  it('warns when a file into an existing list lacks some of its columns (a renamed header)', async () => {
    const first = csv('cols-1.csv', 'email,first_name\na@example.com,Ann\nb@example.com,Bob\n');
    const second = csv('cols-2.csv', 'email,firstname,zip\nc@example.com,Cat,75001\nb@example.com,Bobby,75002\n');
    const created = await runHerald(context.url(), ['import', 'recipients', first, '--list', 'cols', '--json']);
    expect(created.json()[0]).toMatchObject({ columnsMissing: [], columnsAdded: [] });
    const renamed = await runHerald(context.url(), ['import', 'recipients', second, '--list', 'cols', '--json']);
    expect(renamed.json()[0]).toMatchObject({
      imported: 1,
      updated: 1,
      columnsMissing: ['first_name'],
      columnsAdded: ['firstname', 'zip'],
    });
    const human = await runHerald(context.url(), ['import', 'recipients', second, '--list', 'cols']);
    expect(human.stdout.join('\n')).toContain(
      "warning: the list's recipients have column(s) first_name that this file lacks: the 2 recipient(s) it updated lost them",
    );
    const same = await runHerald(context.url(), ['import', 'recipients', first, '--list', 'cols-same', '--json']);
    const again = await runHerald(context.url(), ['import', 'recipients', first, '--list', 'cols-same', '--json']);
    expect([same.json()[0], again.json()[0]]).toMatchObject([
      { columnsMissing: [], columnsAdded: [] },
      { updated: 2, columnsMissing: [], columnsAdded: [] },
    ]);
  });

  it('imports with --json: one summary object with the rejected lines', async () => {
    const run = await runHerald(context.url(), ['import', 'recipients', file, '--list', 'cli', '--json']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toHaveLength(1);
    const [summary] = run.json();
    expect(summary).toMatchObject({
      list: 'cli',
      file,
      read: 30,
      imported: 27,
      updated: 0,
      rejected: 3,
      elapsedMs: expect.any(Number),
    });
    expect(summary?.rejects).toEqual([
      { line: 2, reason: 'missing_at', message: 'no @ in the address' },
      { line: 12, reason: 'missing_at', message: 'no @ in the address' },
      { line: 22, reason: 'missing_at', message: 'no @ in the address' },
    ]);

    const rejects = await runHerald(context.url(), ['import', 'rejects', String(summary?.importId), '--json']);
    expect(rejects.json()).toEqual(
      [2, 12, 22].map((line) => ({
        line,
        reason: 'missing_at',
        message: 'no @ in the address',
        excerpt: `bad${line - 2}.example.com,B${line - 2}`,
      })),
    );

    const lists = await runHerald(context.url(), ['lists', '--json']);
    expect(lists.json()).toContainEqual(expect.objectContaining({ name: 'cli', recipients: 27 }));
  });

  it('prints a text summary with the first 20 rejects and where to find the rest', async () => {
    const bad = ['email'];
    for (let i = 0; i < 25; i++) bad.push(`nope${i}`);
    bad.push('ok@example.com');
    const run = await runHerald(context.url(), [
      'import',
      'recipients',
      csv('bad.csv', `${bad.join('\n')}\n`),
      '--list',
      'cli',
    ]);
    expect(run.exitCode).toBe(0);
    expect(run.stdout[1]).toBe('read 26, imported 1, updated 0, rejected 25');
    expect(run.stdout).toContain('  line 2: missing_at: no @ in the address');
    expect(run.stdout.filter((line) => line.startsWith('  line '))).toHaveLength(20);
    expect(run.stdout.at(-1)).toMatch(/^ {2}… 5 more, see herald import rejects \d+$/);
  });

  it('re-importing counts updates', async () => {
    const run = await runHerald(context.url(), ['import', 'recipients', file, '--list', 'cli', '--json']);
    expect(run.json()[0]).toMatchObject({ read: 30, imported: 0, updated: 27, rejected: 3 });
    // Not a terminal: progress comes as lines on stderr (it was silent), stdout keeps the JSON alone.
    expect(run.stderr.some((line) => /^import: reading \d+% \(30 rows read\)$/.test(line))).toBe(true);
    expect(run.stderr.some((line) => /^import: applying \d+% \(30 rows read\)$/.test(line))).toBe(true);
  });

  it('reports a bad file as an error code, with exit status 1', async () => {
    const latin1 = csv(
      'latin1.csv',
      Buffer.concat([Buffer.from('email,name\nrene@example.com,Ren'), Buffer.from([0xe9]), Buffer.from('\n')]),
    );
    const run = await runHerald(context.url(), ['import', 'recipients', latin1, '--list', 'cli', '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json()[0]).toMatchObject({ error: { code: 'CSV_ENCODING' } });
    expect(run.stderr.join('\n')).toContain('line 2');

    const noEmail = await runHerald(context.url(), [
      'import',
      'recipients',
      csv('noemail.csv', 'name,mail\nBob,bob@example.com\n'),
      '--list',
      'cli',
    ]);
    expect(noEmail.exitCode).toBe(1);
    expect(noEmail.stderr.join('\n')).toContain('CSV_NO_EMAIL_COLUMN');
    expect(noEmail.stderr.join('\n')).toContain('"name", "mail"');

    const unknown = await runHerald(context.url(), ['import', 'rejects', '999999', '--json']);
    expect(unknown.json()[0]).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });

  it('refuses to create a list whose name is empty, padded or does not print, and creates nothing', async () => {
    const cases: Array<[string, string]> = [
      ['', 'is empty'],
      ['   ', 'is empty'],
      [' news', 'starts or ends with a space'],
      ['news\nletter', 'holds the character U+000A'],
      ['news\u001b[2Jletter', 'holds the character U+001B'],
      ['news\u202eletter', 'holds the character U+202E'],
      ['n'.repeat(201), 'is 201 characters long (at most 200)'],
    ];
    for (const [name, problem] of cases) {
      const run = await runHerald(context.url(), ['import', 'recipients', file, '--list', name]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr.join('\n')).toContain(`INPUT_INVALID: the list name ${JSON.stringify(name)} ${problem}`);
    }
    const lists = await runHerald(context.url(), ['lists', '--json']);
    expect(lists.json().map((list) => list.name)).not.toContain('');
    expect(lists.json().every((list) => String(list.name).trim() === list.name)).toBe(true);
  });
});
