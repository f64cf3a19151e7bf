import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RulesHolder } from './compiled-rules.ts';
import { compileMask } from './mask.ts';
import { formatIssue, parseRulePack } from './rule-pack.ts';
import { listSiteFiles, loadRuleFiles, loadRuleTexts, shippedPackPath } from './rule-loader.ts';

const base = `
version: 1
rules:
  - name: google
    mask: "*.google.com"
    maxConnections: 10
    maxMessagesPerHour: 20000
  - name: ids
    mask: "mx?.example.test"
    publicIds: "1-4"
    maxConnections: 2
    maxMessagesPerHour: 100
    timeouts: { connect: 5s, data: 10m }
    tls: required
  - name: generic
    mask: "*"
    maxConnections: 5
    maxMessagesPerHour: 3000
`;

/** The formatted issues of a pack named update.yaml; none when it validates. */
async function packIssues(text: string): Promise<string[]> {
  const result = await parseRulePack(text, 'update.yaml');
  return result.ok ? [] : result.issues.map(formatIssue);
}

describe('masks', () => {
  it.each([
    ['*.google.com', 'gmail-smtp-in.l.google.com', true],
    ['*.google.com', 'ASPMX.L.GOOGLE.COM.', true],
    ['*.google.com', 'google.com', false],
    ['*.google.com', 'evil-google.com', false],
    ['mx?.free.fr', 'mx1.free.fr', true],
    ['mx?.free.fr', 'mx10.free.fr', false],
    ['mta*.am0.yahoodns.net', 'mta7.am0.yahoodns.net', true],
    ['*', 'anything.example', true],
    ['a.b', 'axb', false],
  ])('%s vs %s → %s', (mask, host, expected) => {
    expect(compileMask(mask).test(host)).toBe(expected);
  });

  // A pack from the deliverability source carried `*?*?…*z`: as a RegExp, 4 s per host at ten pairs.
  it('matches a mask made to backtrack without stalling, through the loaded pack', async () => {
    const pack = base.replace('"mx?.example.test"', `"${'*?'.repeat(40)}*z"`);
    const loaded = await loadRuleTexts([{ file: 'site.yaml', text: pack }]);
    expect(loaded.ok).toBe(true);
    if (!loaded.ok) return;
    expect(loaded.rules.match('mx-aol.mail.gm0.yahoodns.net'.repeat(3), 1).name).toBe('generic');
  });
});

describe('rule pack validation', () => {
  it('parses fields, ranges and durations', async () => {
    const result = await parseRulePack(base, 'site.yaml');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const ids = result.pack.rules[1]!;
    expect(ids.publicIds).toEqual([{ from: 1, to: 4 }]);
    expect(ids.timeouts).toEqual({ connectMs: 5_000, dataMs: 600_000 });
    expect(ids.tls).toBe('required');
    expect(ids.maxMessagesPerConnection).toBe(100);
    expect(ids.source.line).toBe(8);
  });

  it.each(['*?', '?*', '**??', '*?.', '?*.'])(
    'refuses a rule whose mask %s matches every MX host like the generic rule, wherever it stands',
    async (mask) => {
      // Accepted before: first in a site layer or an update, it took every host from the rules
      // layered after it (the operator's own site files included), silently.
      const site = `rules:\n  - name: everything\n    mask: "${mask}"\n    maxConnections: 1\n    maxMessagesPerHour: 1\n`;
      expect(await packIssues(site)).toEqual([
        expect.stringMatching(
          /^update\.yaml:2: rules\[0\]\.mask: this mask matches every MX host like the generic rule/,
        ),
      ]);
    },
  );

  // A trailing dot is the DNS root (`mx.example.com.`): the mask "*." is the mask "*". Accepted
  // anywhere before, it took every MX host from the rules after it without being the generic rule.
  it.each(['*.', '**.'])('takes the mask %s for the generic mask "*": refused before other rules', async (mask) => {
    const site = `rules:\n  - name: everything\n    mask: "${mask}"\n    maxConnections: 1\n    maxMessagesPerHour: 1\n  - name: partner\n    mask: mx.partner.test\n    maxConnections: 1\n    maxMessagesPerHour: 1\n`;
    expect(await packIssues(site)).toEqual([
      expect.stringMatching(/^update\.yaml:2: rules\[0\]\.mask: the generic rule \(mask "\*"\) must be the last rule/),
    ]);
  });

  // Accepted before: `burst` permits go at once after a quiet spell, so 100/h with burst 100000
  // sent a thousand hours' quota in an instant.
  it('refuses a burst larger than the hourly quota, naming the burst line', async () => {
    const site = base.replace('    maxMessagesPerHour: 100\n', '    maxMessagesPerHour: 100\n    burst: 100000\n');
    expect(await packIssues(site)).toEqual([
      'update.yaml:13: rules[1].burst: expected at most maxMessagesPerHour (100): a burst goes out at once',
    ]);
    const equal = await parseRulePack(site.replace('burst: 100000', 'burst: 100'), 'update.yaml');
    expect(equal.ok).toBe(true);
  });

  // Numbers are seconds: `data: 3600000` (milliseconds, as mta.dataTimeoutMs) was 41 days, past
  // what a Node timer holds (2^31 - 1 ms), and Node runs such a timer after 1 ms: every DATA timed out.
  it('refuses a duration over 24h, naming its line and field', async () => {
    const site = base.replace('timeouts: { connect: 5s, data: 10m }', 'timeouts: { connect: 5s, data: 3600000 }');
    expect(await packIssues(site)).toEqual([
      expect.stringMatching(/^update\.yaml:13: rules\[1\]\.timeouts\.data: expected a duration.*at most 24h/),
    ]);
    expect((await parseRulePack(site.replace('data: 3600000', 'data: 24h'), 'update.yaml')).ok).toBe(true);
  });

  // An absent publicIds means every id; an empty one (a template that filled in nothing) meant the
  // same, silently: the rule meant for a few addresses gave its limits to all of them.
  it.each(['[]', '""', '" , "'])(
    'refuses an empty publicIds (%s) instead of applying the rule to every id',
    async (ids) => {
      const site = base.replace('publicIds: "1-4"', `publicIds: ${ids}`);
      expect(await packIssues(site)).toEqual([
        'update.yaml:10: rules[1].publicIds: names no public id: leave publicIds out for every public id',
      ]);
    },
  );

  it('refuses a pack of more than 10,000 masks (each new MX host would test them one by one)', async () => {
    const masks = Array.from({ length: 10_001 }, (_, i) => `"m?${i}x"`).join(',');
    const result = await parseRulePack(
      `rules:\n  - name: many\n    mask: [${masks}]\n    maxConnections: 1\n    maxMessagesPerHour: 10\n`,
      'update.yaml',
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map(formatIssue)).toEqual(['update.yaml:2: rules: at most 10000 masks in a pack, not 10001']);
  });

  it('refuses nested YAML aliases ("billion laughs") as an issue with file:line, not an exception', async () => {
    const laughs = [
      'x: &a [x, x, x, x, x, x, x, x, x]',
      ...'bcde'.split('').map((n, i) => `${n}: &${n} [${Array(9).fill(`*${'abcd'[i]}`).join(', ')}]`),
    ];
    const result = await parseRulePack(`${laughs.join('\n')}\nrules: []\n`, 'site.yaml');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(formatIssue(result.issues[0]!)).toMatch(
      /^site\.yaml:2: \(yaml\): YAML aliases .* expand to more than 100 nodes/,
    );
  });

  it('reports file:line for a bad value and for an unknown key', async () => {
    const text = base
      .replace('maxConnections: 2', 'maxConnections: -2')
      .replace('tls: required', 'tls: required\n    maxConection: 3');
    const result = await parseRulePack(text, 'rules/mx/site.yaml');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map(formatIssue)).toEqual([
      'rules/mx/site.yaml:11: rules[1].maxConnections: expected a positive integer',
      'rules/mx/site.yaml:15: rules[1].maxConection: unknown key',
    ]);
  });

  it('rejects YAML syntax errors, bad masks, bad ranges, duplicate names and a generic rule before the end', async () => {
    const syntax = await parseRulePack('rules: [\n  - a', 'x.yaml');
    expect(syntax.ok).toBe(false);
    if (!syntax.ok) expect(syntax.issues[0]).toMatchObject({ file: 'x.yaml', line: 2, path: '(yaml)' });
    const bad = await parseRulePack(
      `rules:
  - { name: a, mask: "bad host!", maxConnections: 1, maxMessagesPerHour: 1 }
  - { name: b, mask: "*", maxConnections: 1, maxMessagesPerHour: 1 }
  - { name: a, mask: "x.*", publicIds: "4-1", maxConnections: 1, maxMessagesPerHour: 1 }
`,
      'bad.yaml',
    );
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    const text = bad.issues.map(formatIssue).join('\n');
    expect(text).toContain('bad.yaml:2: rules[0].mask');
    expect(text).toContain('bad.yaml:4: rules[2].publicIds: range "4-1" ends before it starts');
    const inconsistent = await parseRulePack(
      `rules:
  - { name: a, mask: "a.test", maxConnections: 1, maxMessagesPerHour: 1 }
  - { name: b, mask: "*", maxConnections: 1, maxMessagesPerHour: 1 }
  - { name: A, mask: "x.*", maxConnections: 1, maxMessagesPerHour: 1 }
`,
      'c.yaml',
    );
    expect(inconsistent.ok).toBe(false);
    if (inconsistent.ok) return;
    expect(inconsistent.issues.map(formatIssue)).toEqual([
      'c.yaml:3: rules[1].mask: the generic rule (mask "*") must be the last rule: rules after it can never match',
      'c.yaml:4: rules[2].name: duplicate rule name "A" (first at rules[0])',
    ]);
  });

  it('validates the shipped pack and matches real provider MX hosts', async () => {
    const loaded = await loadRuleFiles([shippedPackPath]);
    expect(loaded.ok).toBe(true);
    if (!loaded.ok) return;
    const rules = loaded.rules;
    const cases: Array<[string, string]> = [
      ['gmail-smtp-in.l.google.com', 'google'],
      ['alt2.aspmx.l.google.com', 'google'],
      ['hotmail-com.olc.protection.outlook.com', 'microsoft-consumer'],
      ['contoso-com.mail.protection.outlook.com', 'microsoft-365'],
      ['mta6.am0.yahoodns.net', 'yahoo-aol'],
      ['mx02.mail.icloud.com', 'apple-icloud'],
      ['smtp-in.orange.fr', 'orange'],
      ['mx2.free.fr', 'free'],
      ['mx01.web.de', 'united-internet'],
      ['mx1.comcast.net', 'comcast'],
      ['mx.small-company.example', 'generic'],
    ];
    for (const [host, rule] of cases) expect(rules.match(host, 1).name, host).toBe(rule);
    expect(rules.rules.at(-1)!.name).toBe('generic');
    expect(
      rules.backoff.some((b) => b.pattern.test('421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred')),
    ).toBe(true);
  });
});

describe('layering', () => {
  it('replaces rules by name, inserts new rules before the generic rule, and versions by content', async () => {
    const site = `rules:
  - { name: google, mask: "*.google.com", maxConnections: 3, maxMessagesPerHour: 500 }
  - { name: partner, mask: "mx.partner.test", maxConnections: 1, maxMessagesPerHour: 10 }
`;
    const layered = await loadRuleTexts([
      { file: 'shipped.yaml', text: base },
      { file: 'site.yaml', text: site },
    ]);
    expect(layered.ok).toBe(true);
    if (!layered.ok) return;
    expect(layered.rules.rules.map((r) => r.name)).toEqual(['google', 'ids', 'partner', 'generic']);
    expect(layered.rules.match('gmail-smtp-in.l.google.com', 0).maxConnections).toBe(3);
    expect(layered.rules.match('mx.partner.test', 0).name).toBe('partner');
    // publicIds restrict the rule: id 7 falls through to generic.
    expect(layered.rules.match('mx1.example.test', 2).name).toBe('ids');
    expect(layered.rules.match('mx1.example.test', 7).name).toBe('generic');
    const again = await loadRuleTexts([
      { file: 'shipped.yaml', text: base },
      { file: 'site.yaml', text: site.replace('500', '501') },
    ]);
    expect(again.ok && again.rules.version).not.toBe(layered.rules.version);
  });

  it('layers by name whatever the order: a renamed generic rule, a rule replaced by the generic mask, many site rules', async () => {
    const rule = (name: string, mask: string) =>
      `  - { name: ${name}, mask: "${mask}", maxConnections: 1, maxMessagesPerHour: 1 }`;
    const pack = (...lines: string[]) => `rules:\n${lines.join('\n')}\n`;
    const names = async (...texts: string[]) => {
      const loaded = await loadRuleTexts(texts.map((text, i) => ({ file: `${i}.yaml`, text })));
      return loaded.ok ? loaded.rules.rules.map((r) => r.name) : loaded.issues.map((issue) => issue.message);
    };
    // A generic rule of another name replaces the generic in place; the old name is free again.
    expect(
      await names(
        pack(rule('a', 'a.test'), rule('generic', '*')),
        pack(rule('catch-all', '*')),
        pack(rule('generic', 'g.test'), rule('A', 'a2.test')),
      ),
    ).toEqual(['A', 'generic', 'catch-all']);
    // The generic replaced by name with a narrower rule: rules come after it, and none is generic.
    expect(
      await names(
        pack(rule('a', 'a.test'), rule('generic', '*')),
        pack(rule('generic', 'g.test'), rule('b', 'b.test')),
      ),
    ).toEqual([expect.stringContaining('no generic rule')]);
    // ... until a generic rule comes at the end; an earlier rule made generic by name shadows the rest.
    expect(
      await names(pack(rule('a', 'a.test'), rule('generic', '*')), pack(rule('generic', 'g.test'), rule('all', '*'))),
    ).toEqual(['a', 'generic', 'all']);
    expect(
      await names(pack(rule('a', 'a.test'), rule('b', 'b.test'), rule('generic', '*')), pack(rule('a', '*'))),
    ).toEqual(['rule "a" matches every MX host, so the rules after it could never match']);
    // Layers without a generic rule first: rules keep their order, later ones go before the generic.
    const site = Array.from({ length: 2_000 }, (_, i) => rule(`customer-${i}`, `*.customer${i}.test`));
    const layered = await names(
      pack(rule('x', 'x.test')),
      pack(rule('generic', '*')),
      pack(...site),
      pack(rule('customer-7', 'mx.seven.test'), rule('late', 'late.test')),
    );
    expect(layered).toEqual(['x', ...site.map((_, i) => `customer-${i}`), 'late', 'generic']);
  });

  it('refuses layers that end without a generic rule', async () => {
    const result = await loadRuleTexts([
      {
        file: 'only.yaml',
        text: 'rules:\n  - { name: a, mask: "x.test", maxConnections: 1, maxMessagesPerHour: 1 }\n',
      },
    ]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues[0]!.message).toContain('no generic rule');
  });

  it('reads the site directory in name order, and the holder swaps rules atomically', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-mx-'));
    writeFileSync(
      join(dir, '20-b.yaml'),
      'rules:\n  - { name: google, mask: "*.google.com", maxConnections: 2, maxMessagesPerHour: 2 }\n',
    );
    writeFileSync(
      join(dir, '10-a.yml'),
      'rules:\n  - { name: google, mask: "*.google.com", maxConnections: 1, maxMessagesPerHour: 1 }\n',
    );
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    const files = listSiteFiles(dir);
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['10-a.yml', '20-b.yaml']);
    const first = await loadRuleFiles([shippedPackPath]);
    const second = await loadRuleFiles([shippedPackPath, ...files]);
    if (!first.ok || !second.ok) throw new Error('packs should load');
    const holder = new RulesHolder(first.rules);
    const seen: string[] = [];
    holder.onSwap((next, previous) => seen.push(`${previous.version}->${next.version}`));
    expect(holder.current().match('gmail-smtp-in.l.google.com', 0).maxConnections).toBe(10);
    holder.swap(second.rules);
    expect(holder.current().match('gmail-smtp-in.l.google.com', 0).maxConnections).toBe(2);
    expect(seen).toEqual([`${first.rules.version}->${second.rules.version}`]);
  });
});

/** A site directory holding one rule file, its rules in force and a watcher on it. */
async function watchedSiteDir(prefix: string) {
  const { watchRules } = await import('./rules-reload.ts');
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const site = join(dir, 'site.yaml');
  writeFileSync(
    site,
    'rules:\n  - { name: google, mask: "*.google.com", maxConnections: 3, maxMessagesPerHour: 300 }\n',
  );
  const initial = await loadRuleFiles([shippedPackPath, site]);
  if (!initial.ok) throw new Error('initial rules must load');
  const holder = new RulesHolder(initial.rules);
  const watcher = watchRules({ holder, sources: { siteRulesDir: dir }, intervalMs: 60_000 });
  return { dir, site, initial: initial.rules, holder, watcher };
}

describe('reload', () => {
  it('swaps in a valid edit, keeps the rules in force on a broken one', async () => {
    const { site, initial, holder, watcher } = await watchedSiteDir('herald-reload-');
    try {
      expect(await watcher.check()).toBeUndefined();
      writeFileSync(
        site,
        'rules:\n  - { name: google, mask: "*.google.com", maxConnections: 4, maxMessagesPerHour: 400 }\n',
      );
      expect(await watcher.check()).toMatchObject({ kind: 'reloaded', previousVersion: initial.version });
      expect(holder.current().match('aspmx.l.google.com', 0).maxConnections).toBe(4);
      writeFileSync(
        site,
        'rules:\n  - { name: google, mask: "*.google.com", maxConnections: four, maxMessagesPerHour: 400 }\n',
      );
      const rejected = await watcher.check();
      expect(rejected).toMatchObject({
        kind: 'rejected',
        issues: [{ file: site, line: 2, path: 'rules[0].maxConnections' }],
      });
      expect(holder.current().match('aspmx.l.google.com', 0).maxConnections).toBe(4);
    } finally {
      watcher.stop();
    }
  });

  // Emacs locks a file it edits with a dangling symlink `.#site.yaml`: stat() of it threw, out of the
  // watcher's timer (an unhandled rejection, which ends the MTA) and out of every rule load.
  it('skips hidden files and refuses a dangling *.yaml by name, keeping the rules in force', async () => {
    const { dir, site, initial, holder, watcher } = await watchedSiteDir('herald-editor-');
    try {
      symlinkSync('operator@mta1.12345:1765170000', join(dir, '.#site.yaml'));
      expect(listSiteFiles(dir)).toEqual([site]);
      expect(await watcher.check()).toBeUndefined();
      symlinkSync(join(dir, 'gone.yaml'), join(dir, 'broken.yaml'));
      expect(await watcher.check()).toMatchObject({
        kind: 'rejected',
        issues: [{ file: join(dir, 'broken.yaml'), path: '(file)', message: expect.stringContaining('cannot read') }],
      });
      expect(holder.current().version).toBe(initial.version);
    } finally {
      watcher.stop();
    }
  });
});

describe('loading again', () => {
  it('reuses what unchanged files gave and parses a file again when its text changed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-load-again-'));
    const a = join(dir, 'a.yaml');
    const b = join(dir, 'b.yaml');
    writeFileSync(a, 'rules:\n  - { name: alpha, mask: "*.alpha.test", maxConnections: 1, maxMessagesPerHour: 10 }\n');
    writeFileSync(b, 'rules:\n  - { name: beta, mask: "*.beta.test", maxConnections: 1, maxMessagesPerHour: 20 }\n');
    const load = async () => {
      const loaded = await loadRuleFiles([shippedPackPath, a, b]);
      if (!loaded.ok) throw new Error(loaded.issues.map(formatIssue).join('\n'));
      return loaded.rules;
    };
    const first = await load();
    expect(await load()).toBe(first);
    writeFileSync(b, 'rules:\n  - { name: beta, mask: "*.beta.test", maxConnections: 1, maxMessagesPerHour: 21 }\n');
    const edited = await load();
    expect(edited.version).not.toBe(first.version);
    expect(edited.match('mx.beta.test', 0).maxMessagesPerHour).toBe(21);
    // The unchanged file was not parsed again: its rule is the one parsed the first time.
    expect(edited.byName('alpha')!.source).toBe(first.byName('alpha')!.source);
    expect(edited.byName('beta')!.source).not.toBe(first.byName('beta')!.source);
    // A broken edit is refused every time it is loaded, and going back gives the first rules again.
    writeFileSync(b, 'rules:\n  - { name: beta, mask: "*.beta.test", maxConnections: x, maxMessagesPerHour: 21 }\n');
    expect((await loadRuleFiles([shippedPackPath, a, b])).ok).toBe(false);
    expect((await loadRuleFiles([shippedPackPath, a, b])).ok).toBe(false);
    writeFileSync(b, 'rules:\n  - { name: beta, mask: "*.beta.test", maxConnections: 1, maxMessagesPerHour: 20 }\n');
    expect(await load()).toBe(first);
  });
});

describe('backoff patterns', () => {
  it('refuses one that backtracks catastrophically on a long reply (ReDoS), with its place', async () => {
    const text = `rules:
  - name: generic
    mask: "*"
    maxConnections: 5
    maxMessagesPerHour: 3000
backoff:
  - name: evil
    reply: "(4+4+)+z"
    factor: 0.5
    duration: 30m
`;
    const result = await parseRulePack(text, 'site.yaml');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(formatIssue(result.issues[0]!)).toMatch(/^site\.yaml:7: backoff\[0\]\.reply: backtracks catastrophically/);
  }, 60_000);
});
