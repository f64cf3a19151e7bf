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
import * as api from './migrations/0015-api.ts';
import * as addressEventsOncePerLog from './migrations/0016-address-events-once-per-log.ts';
import * as mtaNodes from './migrations/0017-mta-nodes.ts';
import * as webhooks from './migrations/0018-webhooks.ts';
import * as doctorAndDedupe from './migrations/0021-doctor-and-dedupe.ts';
import * as inboundMessagesOnce from './migrations/0022-inbound-messages-once.ts';
import * as messageWebhooks from './migrations/0023-message-webhooks.ts';
import * as webSessions from './migrations/0026-web-sessions.ts';
import * as deliveryLogSummaryIndex from './migrations/0027-delivery-log-summary-index.ts';
import * as deliveryLogCounts from './migrations/0028-delivery-log-counts.ts';
import * as deliveryMinuteAndFailureCounts from './migrations/0029-delivery-minute-and-failure-counts.ts';
import * as webSignInCodes from './migrations/0030-web-sign-in-codes.ts';
import * as deliveryPriority from './migrations/0031-delivery-priority.ts';
import * as oneAddressIndex from './migrations/0032-one-address-index.ts';
import * as deliveryDomainCounts from './migrations/0033-delivery-domain-counts.ts';
import * as deliveryLogsStatementForeignKey from './migrations/0034-delivery-logs-statement-foreign-key.ts';
import * as recipientsStatementForeignKey from './migrations/0035-recipients-statement-foreign-key.ts';
import * as maintenanceProgress from './migrations/0036-maintenance-progress.ts';
import * as dueIndexCoversDomain from './migrations/0037-due-index-covers-domain.ts';
import * as preparationWarnings from './migrations/0038-preparation-warnings.ts';
import * as preparationOwner from './migrations/0039-preparation-owner.ts';
import * as webhookSecretRotation from './migrations/0040-webhook-secret-rotation.ts';
import * as webhookDispatchLease from './migrations/0041-webhook-dispatch-lease.ts';
import * as apiIdempotencyKeys from './migrations/0042-api-idempotency-keys.ts';

// Numbered migrations, applied in order at start. Add a file and a line here; never edit one that shipped.
const migrations: Array<[string, { up(db: Kysely<unknown>, dialect: Dialect): Promise<void> }]> = [
  ['0001-initial', initial],
  ['0002-workflows', workflows],
  ['0004-shaping', shaping],
  ['0005-audience', audience],
  ['0006-quarantine', quarantine],
  ['0007-tracking', tracking],
  ['0008-midsourcing', midsourcing],
  ['0009-rule-versions', ruleVersions],
  ['0010-target-order', targetOrder],
  ['0011-mid-state-and-purge', midStateAndPurge],
  ['0012-import-staging', importStaging],
  ['0013-tracking-events-without-time-index', trackingEventsWithoutTimeIndex],
  ['0014-mid-seen-requests', midSeenRequests],
  ['0015-api', api],
  ['0016-address-events-once-per-log', addressEventsOncePerLog],
  ['0017-mta-nodes', mtaNodes],
  ['0018-webhooks', webhooks],
  ['0021-doctor-and-dedupe', doctorAndDedupe],
  ['0022-inbound-messages-once', inboundMessagesOnce],
  ['0023-message-webhooks', messageWebhooks],
  ['0026-web-sessions', webSessions],
  ['0027-delivery-log-summary-index', deliveryLogSummaryIndex],
  ['0028-delivery-log-counts', deliveryLogCounts],
  ['0029-delivery-minute-and-failure-counts', deliveryMinuteAndFailureCounts],
  ['0030-web-sign-in-codes', webSignInCodes],
  ['0031-delivery-priority', deliveryPriority],
  ['0032-one-address-index', oneAddressIndex],
  ['0033-delivery-domain-counts', deliveryDomainCounts],
  ['0034-delivery-logs-statement-foreign-key', deliveryLogsStatementForeignKey],
  ['0035-recipients-statement-foreign-key', recipientsStatementForeignKey],
  ['0036-maintenance-progress', maintenanceProgress],
  ['0037-due-index-covers-domain', dueIndexCoversDomain],
  ['0038-preparation-warnings', preparationWarnings],
  ['0039-preparation-owner', preparationOwner],
  ['0040-webhook-secret-rotation', webhookSecretRotation],
  ['0041-webhook-dispatch-lease', webhookDispatchLease],
  ['0042-api-idempotency-keys', apiIdempotencyKeys],
];

function migratorOf(store: Store): Migrator {
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, module] of migrations) out[name] = { up: (db) => module.up(db, store.dialect) };
      return out;
    },
  };
  return new Migrator({
    db: store.db,
    provider,
    migrationTableName: 'herald_migrations',
    migrationLockTableName: 'herald_migration_lock',
    // Numbers are reserved per branch (docs: HELPERS), so a database migrated by an interim build can
    // meet an older number later (0017 after 0018): apply it instead of refusing to start.
    allowUnorderedMigrations: true,
  });
}

export async function migrateToLatest(store: Store): Promise<string[]> {
  const { error, results } = await migratorOf(store).migrateToLatest();
  if (error) {
    const connection = connectionError(error, store);
    if (connection) throw connection;
    // What the database answered: without it, "migration unknown failed" was all an operator saw.
    const answer = ((error as Error).message ?? String(error)).split('\n')[0];
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new AppError(
      'MIGRATION_FAILED',
      failed
        ? `migration ${failed} failed on ${store.location}: ${answer}`
        : `cannot prepare ${store.location} for its migrations (none ran): ${answer}`,
      { cause: error },
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * The database could not be reached or opened at all (no migration ran): a code naming the cause
 * instead of "migration unknown failed". PostgreSQL SQLSTATEs: 3D000 invalid_catalog_name,
 * 28P01 invalid_password, 28000 invalid_authorization_specification.
 */
export function connectionError(error: unknown, store: Store): AppError | undefined {
  const code = (error as { code?: string }).code ?? '';
  const message = (error as Error).message ?? String(error);
  const details = { database: store.location };
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) {
    const { host, port } = endpoint(store.location);
    return new AppError(
      'DATABASE_UNREACHABLE',
      `cannot reach PostgreSQL at ${host}:${port} (${code}): is it running, and is the host right?`,
      {
        cause: error,
        details: { ...details, host, port },
      },
    );
  }
  // pg-pool's errors when database.connectTimeoutMs passes: the server accepted and never answered.
  if (/connection timeout|timeout exceeded when trying to connect/.test(message)) {
    const { host, port } = endpoint(store.location);
    return new AppError(
      'DATABASE_UNREACHABLE',
      `PostgreSQL at ${host}:${port} did not answer within database.connectTimeoutMs: is it overloaded, hung, or cut off by the network?`,
      { cause: error, details: { ...details, host, port } },
    );
  }
  if (code === '3D000')
    return new AppError(
      'DATABASE_NOT_FOUND',
      `database ${store.location} does not exist: ${message} (create it, e.g. createdb)`,
      {
        cause: error,
        details,
      },
    );
  if (code === '28P01' || code === '28000')
    return new AppError('DATABASE_AUTH_FAILED', `PostgreSQL refused the credentials of ${store.location}: ${message}`, {
      cause: error,
      details,
    });
  if (['SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_PERM', 'SQLITE_READONLY_DIRECTORY', 'EACCES'].includes(code))
    return new AppError('DATABASE_NOT_WRITABLE', `cannot write the database ${store.location}: ${message}`, {
      cause: error,
      details,
    });
  return undefined;
}

function endpoint(location: string): { host: string; port: number } {
  try {
    const url = new URL(location);
    return { host: url.hostname || 'localhost', port: Number(url.port || 5432) };
  } catch {
    return { host: 'localhost', port: 5432 };
  }
}

/** The migrations this code knows that the database has not run yet (readiness: empty when current). */
export async function pendingMigrations(store: Store): Promise<string[]> {
  const known = await migratorOf(store).getMigrations();
  return known.filter((migration) => migration.executedAt === undefined).map((migration) => migration.name);
}
