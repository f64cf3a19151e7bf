import { describe, expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';

// A PostgreSQL URL that is not a URL (a password with a # or / not percent-encoded, a port that is
// not a number) failed as "MIGRATION_FAILED: migration unknown failed on [unparseable url]": no word
// of the URL, so the operator went looking at migrations. It is now DATABASE_URL_INVALID saying what
// a valid one looks like, without printing it (it holds the password).

describe('a database URL that does not parse', () => {
  for (const url of ['postgres://herald:p#ss@127.0.0.1:5432/test', 'postgres://herald:secret@127.0.0.1:abc/test'])
    it(`is refused as DATABASE_URL_INVALID, the password unprinted: ${url.replace(/:[^:@]*@/, ':…@')}`, async () => {
      const run = await runHerald(url, ['db', 'status']);
      expect(run.exitCode).toBe(1);
      const stderr = run.stderr.join('\n');
      expect(stderr).toContain('error: DATABASE_URL_INVALID: database.url (or HERALD_DATABASE_URL) is not a valid URL');
      expect(stderr).toContain('percent-encoded (# as %23, / as %2F, @ as %40)');
      expect(stderr).not.toMatch(/p#ss|secret/);
    });
});
