// Cost of loading the MX rules (a reload by the MTA's watcher, and every `herald delivery eta`,
// `herald mx stats` and doctor run, which load them too) with a large site directory: --rules site
// rules, one per customer, each with a suffix mask (`*.mail.customerN.example`) and a mask tested in
// order (`mx?.customerN.example`), spread over files of at most 1,000 rules, plus a few backoff rules.
// Prints the first load's time, the median of --runs loads after an edit of one file (a reload) and
// of loads of unchanged files (text and one JSON line), and each step of one load without the
// loader's memory: parse (YAML + schema), layer, compile. Never passes or fails on time.
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
/** Site file number `file`; `edit` changes every rate in it (0: as first written). */
function writeSiteFile(file: number, edit: number): void {
  const lines = ['version: 1', 'rules:'];
  for (let i = file * perFile; i < Math.min(ruleCount, (file + 1) * perFile); i++)
    lines.push(
      `  - name: customer-${i}`,
      `    mask: ["*.mail.customer${i}.example", "mx?.customer${i}.example"]`,
      `    maxConnections: ${1 + (i % 5)}`,
      `    maxMessagesPerHour: ${1_000 + i + edit}`,
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
for (let file = 0; file * perFile < ruleCount; file++) writeSiteFile(file, 0);
const files = ruleFilesFor({ siteRulesDir });

try {
  // A reload after an edit: one file's rules change (its text differs), the others do not. Then a
  // load of the same files again: what each reload check, ETA or doctor run finds most of the time.
  const timed = async (): Promise<number> => {
    const started = performance.now();
    const loaded = await loadRuleFiles(files);
    if (!loaded.ok) throw new Error(`the generated rules do not load: ${JSON.stringify(loaded.issues.slice(0, 3))}`);
    loadedRules = loaded.rules.rules.length;
    return performance.now() - started;
  };
  let loadedRules = 0;
  const firstMs = await timed();
  const times: number[] = [];
  const unchangedTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    writeSiteFile(0, run + 1);
    times.push(await timed());
    unchangedTimes.push(await timed());
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

  const round = (ms: number) => Math.round(ms);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const result = {
    bench: 'rules-reload',
    rules: loadedRules,
    files: files.length,
    runs,
    firstMs: round(firstMs),
    editedP50: round(median(times)),
    editedMax: round(Math.max(...times)),
    unchangedP50: round(median(unchangedTimes)),
    parseMs: round(parseMs),
    layerMs: round(layerMs),
    compileMs: round(compileMs),
  };
  console.log(
    `rules reload [${loadedRules} rules in ${files.length} files]: first load ${result.firstMs} ms (backoff patterns checked in a child process); after an edit of one file median ${result.editedP50} ms, max ${result.editedMax} ms; unchanged files median ${result.unchangedP50} ms (${runs} loads each); one uncached load: parse ${result.parseMs} ms, layer ${result.layerMs} ms, compile ${result.compileMs} ms`,
  );
  console.log(JSON.stringify(result));
} finally {
  rmSync(directory, { recursive: true, force: true });
}
