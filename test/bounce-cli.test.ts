import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../src/cli/context.ts';
import { runCli } from '../src/cli/main.ts';
import { bounceCorpusDir } from './support/corpus.ts';

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const corpus = bounceCorpusDir;
const dir = mkdtempSync(join(tmpdir(), 'herald-bounce-cli-'));

function capture(): { context: CliContext; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    context: {
      output: { out: (l) => out.push(l), err: (l) => err.push(l) },
      open: () => Promise.reject(new Error('no database needed')),
    },
  };
}

describe('herald bounce classify', () => {
  it('prints one NDJSON line per recipient, not_bounce for other mail, and goes on past unreadable files', async () => {
    const plain = join(dir, 'hello.eml');
    writeFileSync(plain, 'From: alice@example.org\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n');
    const { context, out, err } = capture();
    const code = await runCli(
      [
        'node',
        'herald',
        'bounce',
        'classify',
        '--json',
        resolve(corpus, 'lhost-postfix-02.eml'),
        join(dir, 'missing.eml'),
        plain,
      ],
      context,
    );
    expect(code).toBe(1);
    const lines = out.map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({
      file: 'lhost-postfix-02.eml',
      index: 1,
      recipient: 'filtered@example.co.jp',
      status: '5.2.1',
      replyCode: '550',
      category: 'userunknown',
      reason: 'user_unknown',
      type: 'hard',
    });
    expect(lines[1]).toMatchObject({
      file: 'lhost-postfix-02.eml',
      index: 2,
      status: '5.1.1',
      category: 'userunknown',
    });
    expect(lines[2]).toMatchObject({ file: join(dir, 'missing.eml'), error: { code: 'NOT_FOUND' } });
    expect(lines[3]).toMatchObject({ file: 'hello.eml', recipient: null, category: 'not_bounce' });
    expect(err.join('\n')).toMatch(/missing\.eml/);
  });

  it('prints a table without --json', async () => {
    const { context, out } = capture();
    expect(await runCli(['node', 'herald', 'bounce', 'classify', resolve(corpus, 'rhost-apple-03.eml')], context)).toBe(
      0,
    );
    expect(out[0]).toMatch(/^FILE\s+RECIPIENT\s+STATUS\s+CODE\s+CATEGORY\s+REASON\s+TYPE\s+RULE$/);
    expect(out[1]).toMatch(
      /rhost-apple-03\.eml\s+pseudo-local-part-of-apple-icloud-mail@icloud\.com\s+5\.2\.2\s+552\s+mailboxfull\s+mailbox_full\s+soft/,
    );
  });

  it('layers a site pack given with --rules', async () => {
    const site = join(dir, 'site.yaml');
    writeFileSync(
      site,
      "rules:\n  # 552 5.2.2 <x@icloud.com>: user is over quota (scoped to another provider)\n  - id: other-quota\n    category: blocked\n    mxHost: '*.example.invalid'\n    status: 5.2.2\n",
    );
    const { context, out } = capture();
    await runCli(
      ['node', 'herald', 'bounce', 'classify', '--json', '--rules', site, resolve(corpus, 'rhost-apple-03.eml')],
      context,
    );
    expect(JSON.parse(out[0]!)).toMatchObject({ category: 'mailboxfull' });
    const withHost = join(dir, 'site2.yaml');
    writeFileSync(
      withHost,
      'rules:\n  # 552 5.2.2 <x@icloud.com>: user is over quota\n  - id: quota-as-block\n    category: blocked\n    status: 5.2.2\n',
    );
    const second = capture();
    await runCli(
      ['node', 'herald', 'bounce', 'classify', '--json', '--rules', withHost, resolve(corpus, 'rhost-apple-03.eml')],
      second.context,
    );
    expect(JSON.parse(second.out[0]!)).toMatchObject({ category: 'blocked', ruleId: 'quota-as-block' });
  });
});

describe('herald bounce rules check', () => {
  it('accepts the shipped pack and reports file:line problems in a site pack', async () => {
    const ok = capture();
    expect(
      await runCli(
        ['node', 'herald', 'bounce', 'rules', 'check', '--base', resolve(repoRoot, 'rules/bounce/default.yaml')],
        ok.context,
      ),
    ).toBe(0);
    expect(ok.out[0]).toMatch(/^ok: bounce rule pack /);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'rules:\n  - id: x\n    category: blocked\n    code: 6000\n');
    const failed = capture();
    expect(await runCli(['node', 'herald', 'bounce', 'rules', 'check', '--json', bad], failed.context)).toBe(1);
    const report = JSON.parse(failed.out[0]!);
    expect(report).toMatchObject({ ok: false, issues: [{ file: bad, line: 4 }] });
    expect(report.issues[0].message).toMatch(/code "6000"/);
  });
});
