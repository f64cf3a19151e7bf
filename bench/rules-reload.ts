// Cost of loading the MX rules (a reload by the MTA's watcher, and every `herald delivery eta`,
// `herald mx stats` and doctor run, which load them too) with a large site directory: --rules site
// rules, one per customer, each with a suffix mask (`*.mail.customerN.example`) and a mask tested in
// order (`mx?.customerN.example`), spread over files of at most 1,000 rules, plus a few backoff rules.
// Prints the median and max of --runs loads (text and one JSON line), and the time of each step of
// the last run: parse (YAML + schema), layer, compile. Never passes or fails on time.
// Run: node --import tsx bench/rules-reload.ts [--rules 2000] [--runs 7]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileRules } from '../src/shaping/compiled-rules.ts';
import { layerRulePacks, loadRuleFiles, ruleFilesFor } from '../src/shaping/rule-loader.ts';
import { parseRulePack, type RulePack } from '../src/shaping/rule-pack.ts';
import { readFileSync } from 'node:fs';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const ruleCount = Number(option('rules', '2000'));
const runs = Number(option('runs', '7'));
const perFile = 1_000;

const directory = mkdtempSync(join(tmpdir(), 'herald-bench-rules-'));
const siteRulesDir = join(directory, 'site');
mkdirSync(siteRulesDir);
for (let file = 0; file * perFile < ruleCount; file++) {
  const lines = ['version: 1', 'rules:'];
  for (let i = file * perFile; i < Math.min(ruleCount, (file + 1) * perFile); i++)
    lines.push(
      `  - name: customer-${i}`,
      `    mask: ["*.mail.customer${i}.example", "mx?.customer${i}.example"]`,
      `    maxConnections: ${1 + (i % 5)}`,
      `    maxMessagesPerHour: ${1_000 + i}`,
    );
  lines.push('backoff:');
  for (let i = 0; i < 5; i++)
    lines.push(
      `  - name: site-slow-down-${file}-${i}`,
      `    reply: "^4\\\\d\\\\d .*site slow down ${file} ${i}"`,
      '    factor: 0.5',
      '    duration: 10m',
    );
  writeFileSync(join(siteRulesDir, `site-${String(file).padStart(2, '0')}.yaml`), `${lines.join('\n')}\n`);
}
const files = ruleFilesFor({ siteRulesDir });

try {
  const times: number[] = [];
  let loadedRules = 0;
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    const loaded = await loadRuleFiles(files);
    times.push(performance.now() - started);
    if (!loaded.ok) throw new Error(`the generated rules do not load: ${JSON.stringify(loaded.issues.slice(0, 3))}`);
    loadedRules = loaded.rules.rules.length;
  }
  // The steps of one load, timed apart (the first run above also timed the backoff patterns' check).
  let started = performance.now();
  const packs: RulePack[] = [];
  for (const file of files) {
    const parsed = await parseRulePack(readFileSync(file, 'utf8'), file);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues.slice(0, 3)));
    packs.push(parsed.pack);
  }
  const parseMs = performance.now() - started;
  started = performance.now();
  const layered = layerRulePacks(packs);
  const layerMs = performance.now() - started;
  if ('issues' in layered) throw new Error(JSON.stringify(layered.issues));
  started = performance.now();
  compileRules({ version: 'bench', files, ...layered });
  const compileMs = performance.now() - started;

  const sorted = [...times].sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms);
  const result = {
    bench: 'rules-reload',
    rules: loadedRules,
    files: files.length,
    runs,
    firstMs: round(times[0]!),
    p50: round(sorted[Math.floor(sorted.length / 2)]!),
    max: round(sorted[sorted.length - 1]!),
    parseMs: round(parseMs),
    layerMs: round(layerMs),
    compileMs: round(compileMs),
  };
  console.log(
    `rules reload [${loadedRules} rules in ${files.length} files]: first ${result.firstMs} ms, then median ${result.p50} ms, max ${result.max} ms (${runs} loads); one load: parse ${result.parseMs} ms, layer ${result.layerMs} ms, compile ${result.compileMs} ms`,
  );
  console.log(JSON.stringify(result));
} finally {
  rmSync(directory, { recursive: true, force: true });
}
