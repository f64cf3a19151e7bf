import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';

// Issue 13 item 10: headers on listings, NDJSON listings (empty = no line), an unknown address said
// so, `mx match` given a domain, template problems caught at creation with their file, `--at` in the
// past and no running MTA warned about.

const dir = mkdtempSync(join(tmpdir(), 'herald-small-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describeEachDialect('listings and creation checks', ({ url }) => {
  it('empty listings: a hint in text, no line with --json', async () => {
    for (const args of [
      ['lists'],
      ['delivery', 'list'],
      ['quarantine', 'list'],
      ['workflows', 'list'],
      ['rules', 'versions'],
    ]) {
      const json = await runHerald(url(), [...args, '--json']);
      expect(json.exitCode, args.join(' ')).toBe(0);
      if (args[0] !== 'workflows') expect(json.stdout, args.join(' ')).toEqual([]);
      else for (const line of json.stdout) expect(JSON.parse(line)).toHaveProperty('name');
    }
    expect((await runHerald(url(), ['delivery', 'list'])).stdout).toEqual([
      'no deliveries yet: herald delivery create --file DEFINITION.yaml',
    ]);
  });

  it('listings have headers', async () => {
    await runHerald(url(), [
      'import',
      'recipients',
      file('r.csv', 'email,first_name\na@example.com,Ann\n'),
      '--list',
      'spring',
    ]);
    const lists = await runHerald(url(), ['lists']);
    expect(lists.stdout[0]).toMatch(/^\s+ID\s+NAME\s+RECIPIENTS\s+CREATED$/);
    expect(lists.stdout[1]).toMatch(/^\s+\d+\s+spring\s+1\s+\d{4}-/);
  });

  it('an unknown variable and a missing list are caught at create', async () => {
    const body = file('body.txt', 'Hello {{ frist_name }}');
    const unknown = await runHerald(url(), [
      'delivery',
      'create',
      '--name',
      'x',
      '--from',
      'news@example.com',
      '--subject',
      'Hi',
      '--text-file',
      body,
      '--list',
      'spring',
      '--json',
    ]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.json()[0]).toMatchObject({ error: { code: 'TEMPLATE_RENDER', list: 'spring' } });
    expect(unknown.stderr.join('\n')).toMatch(/frist_name.*list "spring" has the columns first_name, email/);
    const missing = await runHerald(url(), [
      'delivery',
      'create',
      '--name',
      'x',
      '--from',
      'news@example.com',
      '--subject',
      'Hi',
      '--text-file',
      body,
      '--list',
      'sprnig',
    ]);
    expect(missing.stderr.join('\n')).toMatch(/DELIVERY_NO_TARGET: list "sprnig" does not exist .*\(lists: spring;/);
    expect((await runHerald(url(), ['delivery', 'list', '--json'])).stdout).toEqual([]);
  });

  it('template errors name the file; {% include %} is refused at create', async () => {
    const broken = file('broken.html', '<p>\n{% if x %}never closed\n');
    const syntax = await runHerald(url(), [
      'delivery',
      'create',
      '--name',
      'x',
      '--from',
      'news@example.com',
      '--subject',
      'Hi',
      '--html-file',
      broken,
    ]);
    expect(syntax.stderr.join('\n')).toContain(`error: TEMPLATE_SYNTAX: ${broken}: html template`);
    const include = file('include.html', '<p>hi</p>\n{% include "footer.html" %}\n');
    const refused = await runHerald(url(), [
      'delivery',
      'create',
      '--name',
      'x',
      '--from',
      'news@example.com',
      '--subject',
      'Hi',
      '--html-file',
      include,
      '--json',
    ]);
    expect(refused.json()[0]).toMatchObject({ error: { code: 'TEMPLATE_SYNTAX', file: include, line: 2 } });
    expect(refused.stderr.join('\n')).toContain('{% include %} is refused: templates cannot read files');
  });

  it('delivery start warns when --at is in the past and when no MTA is running', async () => {
    const created = await runHerald(url(), [
      'delivery',
      'create',
      '--name',
      'y',
      '--from',
      'news@example.com',
      '--subject',
      'Hi {{ first_name }}',
      '--text-file',
      file('ok.txt', 'hello'),
      '--list',
      'spring',
      '--json',
    ]);
    const id = String(created.json<{ id: number }>()[0]!.id);
    expect((await runHerald(url(), ['delivery', 'prepare', id])).exitCode).toBe(0);
    const started = await runHerald(url(), ['delivery', 'start', id, '--at', '2020-01-01T00:00:00Z']);
    expect(started.exitCode).toBe(0);
    const stderr = started.stderr.join('\n');
    expect(stderr).toContain('warning: --at 2020-01-01T00:00:00.000Z is in the past');
    expect(stderr).toContain('warning: no MTA is running');
  });

  it('quarantine show of an unknown address says so', async () => {
    const text = await runHerald(url(), ['quarantine', 'show', 'nobody@example.org']);
    expect(text.stdout[0]).toMatch(
      /^nobody@example\.org: unknown to the quarantine \(no state and no event in database .+\): it is sent to as valid$/,
    );
    const json = await runHerald(url(), ['quarantine', 'show', 'nobody@example.org', '--json']);
    expect(json.json()[0]).toMatchObject({ known: false, address: { state: 'valid' }, timeline: [] });
  });
});

describe('mx match given a domain', () => {
  let simulator: Simulator;
  let config: string;
  beforeAll(async () => {
    simulator = await startSimulator();
    config = file('sim.yaml', `mta:\n  resolverServers: ["${simulator.dnsServer}"]\n`);
  });
  afterAll(() => simulator.close());

  it('says it is a mail domain and matches its MX hosts', async () => {
    const run = await runHerald('sqlite::memory:', ['--config', config, 'mx', 'match', 'gmail.test']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout[0]).toBe(
      'gmail.test is a mail domain, not an MX host: rules match the MX host names its MX records give (gmail-smtp-in.l.google.test)',
    );
    expect(run.stdout[1]).toMatch(/^gmail-smtp-in\.l\.google\.test → rule "generic"/);
    const json = await runHerald('sqlite::memory:', ['--config', config, 'mx', 'match', 'gmail.test', '--json']);
    expect(json.json()[0]).toMatchObject({
      domain: 'gmail.test',
      host: 'gmail-smtp-in.l.google.test',
      rule: 'generic',
    });
  });

  it('an MX host name is matched as given', async () => {
    const run = await runHerald('sqlite::memory:', ['--config', config, 'mx', 'match', 'mx.accept.test', '--json']);
    expect(run.json()[0]).not.toHaveProperty('domain');
  });
});
