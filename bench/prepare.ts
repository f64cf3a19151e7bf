// Preparation benchmark: N recipients (default 1,000,000) with personalization data → delivery logs,
// through the real preparation (target extraction by id range, exclusion look-ups, the Liquid
// personalization check of every recipient, batched inserts). Recipients are seeded with plain
// inserts first, in a child process (the import has its own benchmark).
// Run: node --import tsx bench/prepare.ts [--dialect sqlite|postgres] [--recipients 1000000] [--domains 50]
//      (--domains: recipient domains, interleaved in list order; a real list has hundreds to thousands)
// Prints figures (text and one JSON line); it never passes or fails on time.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createAddressPredicate } from '../src/audience/address.ts';
import { systemClock } from '../src/common/clock.ts';
import { preparationStore, prepareDelivery } from '../src/delivery/preparation.ts';
import { demoContent } from '../src/demo/demo-audience.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { createDelivery } from '../src/delivery/delivery-store.ts';
import { migrateToLatest } from '../src/store/migrate.ts';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const dialect = option('dialect', 'sqlite');
const count = Number(option('recipients', '1000000'));
const domains = Number(option('domains', '50'));

// The seeding runs in a child process (this file with --seed-into URL), so the peak RSS printed is the
// preparation's own (with the modules every herald command loads), not the seeding's.
const seedInto = option('seed-into', '');
if (seedInto !== '') {
  const target = openStore(seedInto);
  await migrateToLatest(target);
  await seedRecipients(target, count, domains);
  await target.close();
  process.exit(0);
}

const database = await createScratchDatabase(dialect as 'sqlite' | 'postgres', 'bench_prepare');
const seedStart = performance.now();
execFileSync(
  process.execPath,
  [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    '--seed-into',
    database.url,
    '--recipients',
    String(count),
    '--domains',
    String(domains),
  ],
  { stdio: 'inherit' },
);
const seedSeconds = (performance.now() - seedStart) / 1000;
const store = openStore(database.url);
try {
  const delivery = await createDelivery(
    store,
    {
      name: 'bench',
      fromAddress: 'news@bench.test',
      fromName: 'Bench',
      replyTo: null,
      subject: demoContent.subject,
      html: demoContent.html,
      text: demoContent.text,
      listName: 'bench',
      validityHours: null,
      affinity: null,
      scheduledAt: null,
    },
    { validityHours: 120 },
    Date.now(),
  );
  // What the process holds before preparing (modules, the store's connections): the rest of the
  // peak is the preparation's own.
  const rssBeforeMiB = Math.round(process.memoryUsage().rss / 1024 / 1024);
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const timings = new Map<string, number>();
  const outcome = await prepareDelivery(timed(preparationStore(store), timings), delivery.id, {
    batchSize: 5_000,
    clock: systemClock,
    isValidAddress: createAddressPredicate(),
  });
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  if (outcome.kind !== 'prepared') throw new Error(outcome.error);
  const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  const perSecond = Math.round(outcome.counts.prepared / seconds);
  console.log(
    `prepare [${dialect}]: ${outcome.counts.prepared} delivery logs from ${count} recipients (${domains} domains) in ${seconds.toFixed(2)} s = ${perSecond}/s (CPU of this process ${cpuSeconds.toFixed(2)} s; peak RSS ${peakRssMiB} MiB, ${rssBeforeMiB} MiB before; seeding took ${seedSeconds.toFixed(1)} s)`,
  );
  console.log(
    `  time in store calls: ${[...timings].map(([name, ms]) => `${name} ${(ms / 1000).toFixed(2)} s`).join(', ')}`,
  );
  console.log(
    JSON.stringify({
      bench: 'prepare',
      dialect,
      recipients: count,
      domains,
      prepared: outcome.counts.prepared,
      seconds: Number(seconds.toFixed(2)),
      perSecond,
      cpuSeconds: Number(cpuSeconds.toFixed(2)),
      peakRssMiB,
      rssBeforeMiB,
    }),
  );
} finally {
  await store.close();
  await database.drop();
}

async function seedRecipients(target: Store, total: number, domainCount: number): Promise<void> {
  const now = Date.now();
  const list = await target.db
    .insertInto('lists')
    .values({ name: 'bench', created_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  const cities = ['Lyon', 'Paris', 'Berlin', 'Madrid'];
  for (let i = 0; i < total; i += 5_000) {
    const rows: Array<{
      list_id: number;
      email: string;
      domain: string;
      data: string;
      created_at: number;
      updated_at: number;
    }> = [];
    for (let j = i; j < Math.min(total, i + 5_000); j++) {
      rows.push({
        list_id: list.id,
        email: `user${j}@bench${j % domainCount}.test`,
        domain: `bench${j % domainCount}.test`,
        data: JSON.stringify({ first_name: j % 10 === 3 ? '' : `First${j}`, city: cities[j % 4] }),
        created_at: now,
        updated_at: now,
      });
    }
    await target.db.transaction().execute(async (trx) => {
      for (let k = 0; k < rows.length; k += 2_000)
        await trx
          .insertInto('recipients')
          .values(rows.slice(k, k + 2_000))
          .execute();
    });
  }
}

/** Wraps every store call to add its duration to `timings` (where preparation spends its time). */
function timed<T extends object>(target: T, timings: Map<string, number>): T {
  return new Proxy(target, {
    get(object, key) {
      const value = Reflect.get(object, key) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const start = performance.now();
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(object, args);
        } finally {
          timings.set(String(key), (timings.get(String(key)) ?? 0) + performance.now() - start);
        }
      };
    },
  });
}
