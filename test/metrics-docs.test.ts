import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { ensurePlatformCollector } from '../src/metrics/server.ts';
import { createTestDatabase } from './support/databases.ts';

// docs/metrics.md lists every metric a process registers, and nothing it does not: the table's
// first column against the registry (prom-client's default metrics as the documented prefixes).

const database = await createTestDatabase('sqlite');
afterAll(() => database.drop());

it('docs/metrics.md lists exactly the registered metrics', async () => {
  const herald = await openHerald({
    config: parseConfig({ database: { url: database.url } }, 'test'),
    logger: silentLogger,
  });
  try {
    ensurePlatformCollector(herald);
    const registered = herald.metrics.registry.getMetricsAsArray().map((metric) => metric.name);
    const doc = readFileSync(resolve(import.meta.dirname, '../docs/metrics.md'), 'utf8');
    const documented = doc
      .split('\n')
      .filter((line) => line.startsWith('| `herald_'))
      .flatMap((line) => [...line.split('|')[1]!.matchAll(/`(herald_[a-z_*]+)`/g)].map((match) => match[1]!));
    const prefixes = documented.filter((name) => name.endsWith('*')).map((name) => name.slice(0, -1));
    const exact = documented.filter((name) => !name.endsWith('*'));
    const undocumented = registered.filter(
      (name) => !exact.includes(name) && !prefixes.some((prefix) => name.startsWith(prefix)),
    );
    expect(undocumented).toEqual([]);
    expect(exact.filter((name) => !registered.includes(name))).toEqual([]);
    expect(exact.length).toBeGreaterThan(10);
  } finally {
    await herald.close();
  }
});
