import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/store/database.ts';
import { runHerald } from './support/cli.ts';

// A PostgreSQL URL that is not a URL (a password with a # or / not percent-encoded, a port that is
// not a number) failed as "MIGRATION_FAILED: migration unknown failed on [unparseable url]": no word
// of the URL, so the operator went looking at migrations. It is now DATABASE_URL_INVALID saying what
// a valid one looks like, without printing it (it holds the password); `herald config check` said
// such a file was valid, and now names its line.

describe('a database URL that does not parse', () => {
  for (const url of ['postgres://herald:p#ss@127.0.0.1:5432/test', 'postgres://herald:secret@127.0.0.1:abc/test']) {
    const shown = url.replace(/:[^:@]*@/, ':…@');
    it(`is refused by every command, the password unprinted: ${shown}`, async () => {
      const run = await runHerald(url, ['db', 'status']);
      expect(run.exitCode).toBe(1);
      const stderr = run.stderr.join('\n');
      expect(stderr).toContain('error: CONFIG_INVALID: test: database.url: not a valid URL');
      expect(stderr).toContain('percent-encoded (# as %23, / as %2F, @ as %40)');
      expect(stderr).not.toMatch(/p#ss|secret/);
    });
    it(`is refused by the store as DATABASE_URL_INVALID, unprinted: ${shown}`, () => {
      let error: unknown;
      try {
        openStore(url);
      } catch (caught) {
        error = caught;
      }
      expect(error).toMatchObject({
        code: 'DATABASE_URL_INVALID',
        message: expect.stringContaining('database.url (or HERALD_DATABASE_URL) is not a valid URL'),
      });
      expect((error as Error).message).not.toMatch(/p#ss|secret/);
    });
  }
});

describe('herald config check with a database URL that does not parse', () => {
  it('refuses it with file, line and key, the password unprinted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-dburl-'));
    const file = join(dir, 'herald.yaml');
    writeFileSync(file, 'nodeId: a\ndatabase:\n  url: postgres://herald:p#ss@db.example:5432/herald\n');
    const run = await runHerald('sqlite::memory:', ['--config', file, 'config', 'check']);
    expect(run.exitCode).toBe(1);
    const stderr = run.stderr.join('\n');
    expect(stderr).toContain(`CONFIG_INVALID: ${file}:3: database.url: not a valid URL`);
    expect(stderr).not.toContain('p#ss');
  });
});
