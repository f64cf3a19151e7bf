import { describe, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';
import { postgresAdminUrl, postgresUnavailable } from './support/databases.ts';

// A PostgreSQL that refuses the session for a reason other than the address, the database or the
// credentials (a bad startup parameter in the URL, sslmode=require on a server without TLS) stopped
// every command with "MIGRATION_FAILED: migration unknown failed on …" and not a word of what
// PostgreSQL said. Its answer is now in the message.

describe.skipIf(postgresUnavailable)('a database that refuses the session', () => {
  it('says what PostgreSQL answered, and that no migration ran', async () => {
    const url = new URL(postgresAdminUrl);
    url.searchParams.set('options', '-c work_mem=bogus');
    const run = await runHerald(url.toString(), ['db', 'status']);
    expect(run.exitCode).toBe(1);
    const stderr = run.stderr.join('\n');
    expect(stderr).toContain('MIGRATION_FAILED: cannot prepare');
    expect(stderr).toContain('for its migrations (none ran): invalid value for parameter "work_mem": "bogus"');
  });
});
