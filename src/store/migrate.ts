import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { AppError } from '../common/errors.ts';
import type { Dialect, Store } from './database.ts';
import * as initial from './migrations/0001-initial.ts';
import * as workflows from './migrations/0002-workflows.ts';
import * as shaping from './migrations/0004-shaping.ts';
import * as audience from './migrations/0005-audience.ts';
import * as quarantine from './migrations/0006-quarantine.ts';
import * as tracking from './migrations/0007-tracking.ts';
import * as midsourcing from './migrations/0008-midsourcing.ts';
import * as ruleVersions from './migrations/0009-rule-versions.ts';
import * as targetOrder from './migrations/0010-target-order.ts';
import * as midStateAndPurge from './migrations/0011-mid-state-and-purge.ts';
import * as importStaging from './migrations/0012-import-staging.ts';
import * as trackingEventsWithoutTimeIndex from './migrations/0013-tracking-events-without-time-index.ts';
import * as midSeenRequests from './migrations/0014-mid-seen-requests.ts';

// Numbered migrations, applied in order at start. Add a file and a line here; never edit one that shipped.
const migrations: Array<[string, { up(db: Kysely<unknown>, dialect: Dialect): Promise<void> }]> = [['0001-initial', initial], ['0002-workflows', workflows], ['0004-shaping', shaping], ['0005-audience', audience], ['0006-quarantine', quarantine], ['0007-tracking', tracking], ['0008-midsourcing', midsourcing], ['0009-rule-versions', ruleVersions], ['0010-target-order', targetOrder], ['0011-mid-state-and-purge', midStateAndPurge], ['0012-import-staging', importStaging], ['0013-tracking-events-without-time-index', trackingEventsWithoutTimeIndex], ['0014-mid-seen-requests', midSeenRequests]];

export async function migrateToLatest(store: Store): Promise<string[]> {
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, module] of migrations) out[name] = { up: (db) => module.up(db, store.dialect) };
      return out;
    },
  };
  const migrator = new Migrator({ db: store.db, provider, migrationTableName: 'herald_migrations', migrationLockTableName: 'herald_migration_lock' });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new AppError('MIGRATION_FAILED', `migration ${failed} failed on ${store.location}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
