import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../src/cli/context.ts';
import { runCli } from '../src/cli/main.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { openStore } from '../src/store/database.ts';
import { startCuttableProxy } from './support/cuttable-proxy.ts';
import { postgresAdminUrl, postgresUnavailable } from './support/databases.ts';
import { createScratchDatabase } from './support/scratch-database.ts';

// Issue 13 items 2 and 3: the database in use is never a surprise, and a database that cannot be
// opened says why. The CLI's own open options (create or not) reach openHerald here, unlike
// test/support/cli.ts, which always opens the test's database.

async function herald(url: string, args: string[], database: { connectTimeoutMs?: number } = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const context: CliContext = {
    output: { out: (line) => stdout.push(line), err: (line) => stderr.push(line) },
    open: (options = {}) =>
      openHerald({ ...options, config: parseConfig({ database: { url, ...database } }, 'test'), logger: silentLogger }),
  };
  const exitCode = await runCli(['node', 'herald', ...args], context);
  const json = stdout.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { error?: Record<string, unknown> });
  return { exitCode, stdout, stderr, json };
}

describe('SQLite database in use', () => {
  it('a read-only command never creates a database: DATABASE_NOT_FOUND naming the path', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'herald-nodb-')), 'herald.db');
    for (const args of [['doctor'], ['lists'], ['delivery', 'list'], ['quarantine', 'list'], ['db', 'status']]) {
      const run = await herald(`sqlite:${file}`, [...args, '--json']);
      expect(run.exitCode, args.join(' ')).toBe(1);
      expect(run.json[0]?.error).toMatchObject({ code: 'DATABASE_NOT_FOUND', database: file });
      expect(run.stderr.join('\n')).toContain(`no database at ${file}`);
    }
    expect(existsSync(file)).toBe(false);
  });

  it('a command that puts data in creates it; "not found" then names the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-db-'));
    const file = join(dir, 'herald.db');
    writeFileSync(join(dir, 'r.csv'), 'email\na@example.com\n');
    const imported = await herald(`sqlite:${file}`, ['import', 'recipients', join(dir, 'r.csv'), '--list', 'l']);
    expect(imported.exitCode).toBe(0);
    expect(existsSync(file)).toBe(true);
    const run = await herald(`sqlite:${file}`, ['delivery', 'show', '4242', '--json']);
    expect(run.exitCode).toBe(1);
    expect(run.json[0]?.error).toMatchObject({ code: 'NOT_FOUND', database: file });
    expect(String(run.json[0]?.error?.message)).toContain(`(database ${file})`);
  });

  it('a SQLite URL in a missing folder is refused, not created: DATABASE_NOT_WRITABLE', async () => {
    const folder = join(mkdtempSync(join(tmpdir(), 'herald-missing-')), 'no', 'such');
    const run = await herald(`sqlite:${join(folder, 'herald.db')}`, [
      'import',
      'recipients',
      'x.csv',
      '--list',
      'l',
      '--json',
    ]);
    expect(run.exitCode).toBe(1);
    expect(run.json[0]?.error).toMatchObject({ code: 'DATABASE_NOT_WRITABLE' });
    expect(run.stderr.join('\n')).toContain(`folder ${folder} does not exist`);
    expect(existsSync(folder)).toBe(false);
  });
});

describe('a database that runs out of room mid-command', () => {
  it('SQLite full: DATABASE_FULL naming the file and what to do, nothing half-written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-full-'));
    const file = join(dir, 'herald.db');
    writeFileSync(join(dir, 'r.csv'), 'email\na@example.com\n');
    writeFileSync(join(dir, 'body.html'), `<p>${'x'.repeat(200_000)}</p>`);
    const imported = await herald(`sqlite:${file}`, ['import', 'recipients', join(dir, 'r.csv'), '--list', 'l']);
    // Nothing on stderr but the import's progress lines (stderr is no terminal here).
    expect(imported.stderr.filter((line) => !line.startsWith('import: '))).toEqual([]);
    expect(imported.exitCode).toBe(0);
    // A disk that is full: SQLite may not grow the file past the pages it has (max_page_count).
    const stdout: string[] = [];
    const stderr: string[] = [];
    const context: CliContext = {
      output: { out: (line) => stdout.push(line), err: (line) => stderr.push(line) },
      open: async (options = {}) => {
        const opened = await openHerald({
          ...options,
          config: parseConfig({ database: { url: `sqlite:${file}` } }, 'test'),
          logger: silentLogger,
        });
        const { rows } = await sql<{ page_count: number }>`pragma page_count`.execute(opened.store.db);
        await sql.raw(`pragma max_page_count = ${rows[0]!.page_count}`).execute(opened.store.db);
        return opened;
      },
    };
    const args = ['delivery', 'create', '--name', 'big', '--from', 'news@example.com', '--subject', 'Hi'];
    const exitCode = await runCli(
      ['node', 'herald', ...args, '--html-file', join(dir, 'body.html'), '--list', 'l', '--json'],
      context,
    );
    expect(exitCode).toBe(1);
    const error = (JSON.parse(stdout.at(-1)!) as { error: Record<string, unknown> }).error;
    expect(error).toMatchObject({ code: 'DATABASE_FULL', database: file });
    expect(stderr.join('\n')).toContain(`error: DATABASE_FULL: the database ${file} has no room left`);
    const listed = await herald(`sqlite:${file}`, ['delivery', 'list', '--json']);
    expect(listed.json).toEqual([]);
  });
});

describe.skipIf(postgresUnavailable !== undefined)('PostgreSQL connection errors name the cause', () => {
  const at = (change: (url: URL) => void) => {
    const url = new URL(postgresAdminUrl);
    change(url);
    return url.toString();
  };

  it('a database turned read-only mid-life (a standby, an admin): DATABASE_NOT_WRITABLE naming it', async () => {
    const scratch = await createScratchDatabase('postgres');
    try {
      const dir = mkdtempSync(join(tmpdir(), 'herald-ro-'));
      writeFileSync(join(dir, 'r.csv'), 'email\na@example.com\n');
      expect((await herald(scratch.url, ['import', 'recipients', join(dir, 'r.csv'), '--list', 'l'])).exitCode).toBe(0);
      const admin = new pg.Client({ connectionString: scratch.url });
      await admin.connect();
      await admin.query(
        `alter database "${new URL(scratch.url).pathname.slice(1)}" set default_transaction_read_only = on`,
      );
      await admin.end();
      const run = await herald(scratch.url, ['import', 'recipients', join(dir, 'r.csv'), '--list', 'l', '--json']);
      expect(run.exitCode).toBe(1);
      expect(run.json.at(-1)?.error).toMatchObject({ code: 'DATABASE_NOT_WRITABLE' });
      expect(run.stderr.join('\n')).toContain('became read-only while this command ran');
    } finally {
      await scratch.drop();
    }
  });

  it('connection refused: DATABASE_UNREACHABLE with host:port', async () => {
    const run = await herald(
      at((url) => {
        url.port = '1';
      }),
      ['doctor', '--json'],
    );
    expect(run.exitCode).toBe(1);
    expect(run.json[0]?.error).toMatchObject({ code: 'DATABASE_UNREACHABLE', port: 1 });
    expect(run.stderr.join('\n')).toMatch(/cannot reach PostgreSQL at [^ ]+:1 \(ECONNREFUSED\)/);
  });

  it('a server that accepts and never answers: DATABASE_UNREACHABLE after database.connectTimeoutMs, not a hang', async () => {
    const target = new URL(postgresAdminUrl);
    const proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    proxy.blackhole();
    try {
      const run = await herald(
        at((url) => {
          url.host = `${proxy.host}:${proxy.port}`;
        }),
        ['doctor', '--json'],
        { connectTimeoutMs: 300 },
      );
      expect(run.exitCode).toBe(1);
      expect(run.json[0]?.error).toMatchObject({ code: 'DATABASE_UNREACHABLE', port: proxy.port });
      expect(run.stderr.join('\n')).toMatch(/did not answer within database.connectTimeoutMs/);
      expect(proxy.accepted()).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('database does not exist: DATABASE_NOT_FOUND', async () => {
    const run = await herald(
      at((url) => {
        url.pathname = '/herald_no_such_database';
      }),
      ['doctor', '--json'],
    );
    expect(run.json[0]?.error).toMatchObject({ code: 'DATABASE_NOT_FOUND' });
    expect(run.stderr.join('\n')).toContain('herald_no_such_database');
  });

  it('authentication failed: DATABASE_AUTH_FAILED', async () => {
    const run = await herald(
      at((url) => {
        url.username = 'herald_no_such_role';
        url.password = 'wrong';
      }),
      ['doctor', '--json'],
    );
    expect(run.json[0]?.error).toMatchObject({ code: 'DATABASE_AUTH_FAILED' });
    expect(run.stderr.join('\n')).not.toContain('wrong');
  });
});

describe('config show and config check name the files in use', () => {
  it('prints the configuration file and the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-inuse-'));
    const file = join(dir, 'herald.yaml');
    writeFileSync(file, `database:\n  url: sqlite:${join(dir, 'h.db')}\n`);
    for (const sub of ['show', 'check']) {
      const run = await herald('sqlite::memory:', ['--config', file, 'config', sub]);
      const out = run.stdout.join('\n');
      expect(out).toContain(`config file: ${file}`);
      expect(out).toContain(`database: ${join(dir, 'h.db')}`);
    }
    expect(existsSync(join(dir, 'h.db'))).toBe(false);
  });
});

describe.skipIf(postgresUnavailable !== undefined)('PostgreSQL connection ended by the server mid-work', () => {
  it('a backend terminated between two queries of a checked-out client fails that work only: the process lives on and the store serves the next query', async () => {
    // The administrator's pg_terminate_backend, idle_in_transaction_session_timeout and a PostgreSQL
    // restart all send a FATAL to a backend waiting for its client's next statement.
    const store = openStore(postgresAdminUrl);
    const admin = new pg.Client({ connectionString: postgresAdminUrl });
    await admin.connect();
    try {
      await store.withPgClient!(async (client) => {
        const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
        const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
        await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
        // The FATAL arrives with no query in flight: an unlistened 'error' event on the client ended
        // the process (vitest reports it as an uncaught exception).
        await ended;
        await expect(client.query('select 1')).rejects.toThrow();
      });
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(store.db);
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await admin.end();
      await store.close();
    }
  });
});
