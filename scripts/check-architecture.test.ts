import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkArchitecture, readSources, type Source } from './check-architecture.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

function check(...sources: Source[]) {
  return checkArchitecture(sources).map((v) => `${v.file}:${v.line}: ${v.rule}`);
}

const file = (path: string, ...lines: string[]): Source => ({ path, text: lines.join('\n') });

describe('store-imports-area', () => {
  it('fires when src/store/ imports an area, even for types only', () => {
    const store = file(
      'src/store/delivery-queries.ts',
      "import { sql } from 'kysely';",
      "import { assertTransition } from '../delivery/state-machine.ts';",
      "import type { Outcome } from '../mta/outcome.ts';",
      "export type { Herald } from '../main.ts';",
    );
    expect(check(store)).toEqual([
      'src/store/delivery-queries.ts:2: store-imports-area',
      'src/store/delivery-queries.ts:3: store-imports-area',
      'src/store/delivery-queries.ts:4: store-imports-area',
    ]);
  });

  it('lets store/ import store/, common/ and packages, and areas import store/', () => {
    const store = file(
      'src/store/database.ts',
      "import pg from 'pg';",
      "import { AppError } from '../common/errors.ts';",
      "import type { Database } from './tables.ts';",
      "import * as initial from './migrations/0001-initial.ts';",
    );
    const area = file('src/mta/queue-store.ts', "import type { Store } from '../store/database.ts';");
    expect(check(store, area)).toEqual([]);
  });
});

describe('query-outside-storage', () => {
  const queries = [
    "import { sql, type Kysely } from 'kysely';",
    "import Database from 'better-sqlite3';",
    'export async function run(store) {',
    "  await store.db.selectFrom('deliveries').selectAll().execute();",
    '  await store.db',
    "    .updateTable('delivery_logs')",
    '    .execute();',
    '  await sql`vacuum`.execute(store.db);',
    '  await sql<number>`select 1`.execute(store.db);',
    '  await store.db.transaction().execute(async () => {});',
    '  await store.withPgClient((client) => client.query("select 1"));',
    "  const copy = require('pg-copy-streams');",
    '}',
  ];

  it('fires on Kysely builders, sql templates, transactions, withPgClient and driver imports', () => {
    expect(check(file('src/cli/delivery-command.ts', ...queries))).toEqual([
      'src/cli/delivery-command.ts:1: query-outside-storage',
      'src/cli/delivery-command.ts:2: query-outside-storage',
      'src/cli/delivery-command.ts:4: query-outside-storage',
      'src/cli/delivery-command.ts:6: query-outside-storage',
      'src/cli/delivery-command.ts:8: query-outside-storage',
      'src/cli/delivery-command.ts:9: query-outside-storage',
      'src/cli/delivery-command.ts:10: query-outside-storage',
      'src/cli/delivery-command.ts:11: query-outside-storage',
      'src/cli/delivery-command.ts:12: query-outside-storage',
    ]);
  });

  it('allows them in storage files, tests and test fixtures', () => {
    expect(
      check(
        file('src/delivery/delivery-store.ts', ...queries),
        file('src/store/migrate.ts', ...queries),
        file('src/delivery/lifecycle.test.ts', ...queries),
        file('src/mta/testing/seed-delivery.ts', ...queries),
      ),
    ).toEqual([]);
  });

  it('ignores comments, strings, type-only imports and look-alike methods', () => {
    const area = file(
      'src/delivery/lifecycle.ts',
      "import type { Kysely } from 'kysely';",
      "import { type Selectable } from 'kysely';",
      '// store.db.selectFrom(...) lives in delivery-store.ts, not here',
      "const text = 'db.transaction(() => {})';",
      'const match = /line:(\\d+)/.exec(message);',
      'const kysely: Kysely<unknown> | undefined = undefined;',
      'await startDelivery(store, id, now);',
    );
    expect(check(area)).toEqual([]);
  });
});

describe('decision-imports-io', () => {
  it('fires on I/O modules, storage, and I/O reached through a value import', () => {
    const decision = file(
      'src/quarantine/decide.ts',
      "import { readFileSync } from 'node:fs';",
      "import { resolve } from 'node:dns/promises';",
      "import { openStore } from '../store/database.ts';",
      "import { getAddress } from './quarantine-store.ts';",
      "import { helper } from './helper.ts';",
      "import type { Transporter } from 'nodemailer';",
    );
    const helper = file('src/quarantine/helper.ts', "import { connect } from 'node:net';", 'export const helper = 1;');
    const violations = checkArchitecture([decision, helper]);
    expect(violations.map((v) => `${v.line}: ${v.rule}`)).toEqual([
      '1: decision-imports-io',
      '2: decision-imports-io',
      '3: decision-imports-io',
      '4: decision-imports-io',
      '5: decision-imports-io',
      '6: decision-imports-io',
    ]);
    expect(violations[4]!.message).toContain('node:net through src/quarantine/helper.ts');
  });

  it('allows pure imports and type-only imports of src/ modules, storage included', () => {
    const decision = file(
      'src/delivery/state-machine.ts',
      "import { AppError } from '../common/errors.ts';",
      "import type { DeliveryState } from '../store/tables.ts';",
      "import type { Store } from '../store/database.ts';",
      "import type { ClaimedLog } from '../mta/mta-store.ts';",
      "import type { Config } from './loader.ts';",
      "import { createHash } from 'node:crypto';",
      "import { z } from 'zod';",
    );
    const loader = file('src/delivery/loader.ts', "import { readFileSync } from 'node:fs';");
    const errors = file('src/common/errors.ts', 'export class AppError extends Error {}');
    const io = file('src/delivery/io.ts', "import { readFileSync } from 'node:fs';");
    expect(check(decision, loader, errors, io)).toEqual([]);
  });

  it('does not loop on import cycles', () => {
    const a = file('src/shaping/backoff.ts', "import { b } from './breaker.ts';", 'export const a = 1;');
    const b = file('src/shaping/breaker.ts', "import { a } from './backoff.ts';", 'export const b = 1;');
    expect(check(a, b)).toEqual([]);
  });
});

describe('the repository', () => {
  it('follows every rule', () => {
    expect(checkArchitecture(readSources(root))).toEqual([]);
  });
});
