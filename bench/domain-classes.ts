// Cost of the provider classes /metrics gives the due queue (herald_queue_due): one read returns the
// due count per recipient domain, and every domain is classified (src/metrics/labels.ts). A large
// sender's list spans tens of thousands of company domains and a few providers' domains. Each read
// classifies fresh strings, as the database returns them. Prints the median and max per read, the
// time the event loop is blocked by the classification.
// Run: node --import tsx bench/domain-classes.ts [--domains 50000] [--reads 20]
import { domainClass } from '../src/metrics/labels.ts';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const domains = Number(option('domains', '50000'));
const reads = Number(option('reads', '20'));
const providers = ['gmail.com', 'hotmail.fr', 'yahoo.co.uk', 'orange.fr', 'web.de', 'icloud.com', 'mail.ru'];

// Parsed from JSON: fresh flat strings, as a database driver returns them (a template literal's
// concatenation would be flattened by the first regular expression, inside the timed part).
function dueRows(): Array<{ domain: string; count: number }> {
  const rows = Array.from({ length: domains }, (_, i) => ({
    domain: i < providers.length ? providers[i]! : `mail-${i}.company-${i % 977}.example.co.uk`,
    count: 1 + (i % 7),
  }));
  return JSON.parse(JSON.stringify(rows));
}

const times: number[] = [];
let classes = 0;
for (let read = 0; read < reads; read++) {
  const rows = dueRows();
  const started = performance.now();
  const dueByClass = new Map<string, number>();
  for (const row of rows) {
    const name = domainClass(row.domain);
    dueByClass.set(name, (dueByClass.get(name) ?? 0) + row.count);
  }
  times.push(performance.now() - started);
  classes = dueByClass.size;
}
times.sort((a, b) => a - b);
const result = {
  bench: 'domain-classes',
  domains,
  reads,
  classes,
  p50: Number(times[Math.floor(times.length / 2)]!.toFixed(1)),
  max: Number(times[times.length - 1]!.toFixed(1)),
};
console.log(
  `domain classes [${domains} recipient domains]: ${result.p50} ms per read (median), max ${result.max} ms (${reads} reads, ${classes} classes)`,
);
console.log(JSON.stringify(result));
