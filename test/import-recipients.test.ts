import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { importRecipients, maxBatchBytes, type ImportProgress } from '../src/audience/csv-import.ts';
import { manualClock } from '../src/common/clock.ts';
import { AppError } from '../src/common/errors.ts';
import { getImport, listRejects } from '../src/audience/audience-store.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { describeEachDialect } from './support/databases.ts';

const dir = mkdtempSync(join(tmpdir(), 'herald-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function csv(content: string | Buffer): string {
  const file = join(dir, `f${++fileCount}.csv`);
  writeFileSync(file, content);
  return file;
}

const limits = { maxFileBytes: 10 * 1024 * 1024, maxRecordBytes: 1024 };

async function recipients(
  store: Store,
  list: string,
): Promise<Array<{ email: string; domain: string; data: Record<string, string> }>> {
  const rows = await store.db
    .selectFrom('recipients')
    .innerJoin('lists', 'lists.id', 'recipients.list_id')
    .select(['recipients.email', 'recipients.domain', 'recipients.data'])
    .where('lists.name', '=', list)
    .orderBy('recipients.email')
    .execute();
  return rows.map((row) => ({
    email: row.email,
    domain: row.domain,
    data: JSON.parse(row.data) as Record<string, string>,
  }));
}

async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describeEachDialect('import recipients', (context) => {
  const run = (
    file: string,
    list: string,
    extra: {
      batchSize?: number;
      chunkBytes?: number;
      onProgress?: (p: ImportProgress) => void;
      maxRecordBytes?: number;
    } = {},
  ) => importRecipients({ store: context.store(), file, list, clock: manualClock(), ...limits, ...extra });

  it('imports addresses with IDN domains and personalization columns', async () => {
    const file = csv('First Name,EMAIL,city\nZoë,zoe@Bücher.DE,Köln\nBob,  Bob.Smith@Example.COM ,Paris\n');
    const progress: ImportProgress[] = [];
    const summary = await run(file, 'happy', { onProgress: (p) => progress.push(p) });
    expect(summary).toMatchObject({ list: 'happy', read: 2, imported: 2, updated: 0, rejected: 0, rejects: [] });
    expect(await recipients(context.store(), 'happy')).toEqual([
      { email: 'Bob.Smith@example.com', domain: 'example.com', data: { 'First Name': 'Bob', city: 'Paris' } },
      { email: 'zoe@xn--bcher-kva.de', domain: 'xn--bcher-kva.de', data: { 'First Name': 'Zoë', city: 'Köln' } },
    ]);
    expect(progress.at(-1)).toMatchObject({ phase: 'applying', rows: 2, applied: 2, toApply: 2 });
    const record = await getImport(context.store(), summary.importId);
    expect(record).toMatchObject({
      state: 'finished',
      list_name: 'happy',
      read_count: 2,
      imported_count: 2,
      updated_count: 0,
      rejected_count: 0,
    });
  });

  it('merges duplicates within the file and against the list (the later row wins)', async () => {
    const first = csv('email,plan\na@example.com,free\nb@example.com,free\nA@EXAMPLE.COM,other\na@example.com,pro\n');
    const one = await run(first, 'dups', { batchSize: 2 });
    // a@example.com twice (merged, one update); A@example.com differs by local-part case (RFC 5321 §2.4).
    expect(one).toMatchObject({ read: 4, imported: 3, updated: 1, rejected: 0 });
    // The file repeats a@example.com on line 4 (case variant) and line 5 (exact repeat): both reported, with
    // the line of the address's first row; preparation will send to that mailbox once.
    expect(one).toMatchObject({
      repeated: 2,
      repeats: [
        { line: 4, email: 'A@example.com', firstLine: 2 },
        { line: 5, email: 'a@example.com', firstLine: 2 },
      ],
    });
    const again = csv('email,plan\nb@example.com,pro\nc@example.com,free\n');
    const two = await run(again, 'dups');
    expect(two).toMatchObject({ read: 2, imported: 1, updated: 1, rejected: 0, repeated: 0, repeats: [] });
    // Duplicates inside one apply range, one of them already in the list.
    const three = await run(csv('email,plan\nc@example.com,x\nd@example.com,new\nc@example.com,y\n'), 'dups');
    expect(three).toMatchObject({ read: 3, imported: 1, updated: 2, rejected: 0, repeated: 1 });
    const rows = await recipients(context.store(), 'dups');
    expect(rows.map((r) => [r.email, r.data.plan])).toEqual([
      ['A@example.com', 'other'],
      ['a@example.com', 'pro'],
      ['b@example.com', 'pro'],
      ['c@example.com', 'y'],
      ['d@example.com', 'new'],
    ]);
  });

  it('rejects 10% malformed rows with exact counts and line numbers', async () => {
    const lines = ['email,name'];
    const expected: Array<{ line: number; reason: string }> = [];
    for (let i = 0; i < 200; i++) {
      const line = i + 2;
      if (i % 10 === 3) {
        const bad = [`user${i}.example.com,n`, `user${i}@example,n`, `user${i}@example.com`, `,n`][
          ((i / 10) % 4) | 0
        ] as string;
        lines.push(bad);
        expected.push({
          line,
          reason: ['missing_at', 'domain_no_dot', 'column_count', 'empty_email'][((i / 10) % 4) | 0] as string,
        });
      } else lines.push(`user${i}@example.com,name ${i}`);
    }
    const summary = await run(csv(`${lines.join('\r\n')}\r\n`), 'tenth', { batchSize: 50 });
    expect(summary).toMatchObject({ read: 200, imported: 180, updated: 0, rejected: 20 });
    expect(summary.rejects.map(({ line, reason }) => ({ line, reason }))).toEqual(expected);
    const stored = await listRejects(context.store(), summary.importId, { limit: 100 });
    expect(stored.map((r) => ({ line: r.line, reason: r.reason }))).toEqual(expected);
    expect(stored[2]).toMatchObject({ excerpt: 'user23@example.com', message: '1 fields where the header has 2' });
  });

  it('fails on a missing email column, listing the columns found, and creates nothing', async () => {
    const error = await failure(run(csv('name;mail\nBob;bob@example.com\n'), 'nomail'));
    expect(error.code).toBe('CSV_NO_EMAIL_COLUMN');
    expect(error.message).toContain('"name;mail"');
    expect(error.message).toContain('separator');
    const list = await context
      .store()
      .db.selectFrom('lists')
      .select('id')
      .where('name', '=', 'nomail')
      .executeTakeFirst();
    expect(list).toBeUndefined();
  });

  it('fails on a Latin-1 file, naming the line, and leaves the list as it was', async () => {
    await run(csv('email,name\nkeep@example.com,before\n'), 'latin');
    const rows = ['email,name'];
    for (let i = 0; i < 30; i++) rows.push(`u${i}@example.com,plain`);
    const head = Buffer.from(`${rows.join('\n')}\nkeep@example.com,Ren`);
    const file = csv(Buffer.concat([head, Buffer.from([0xe9]), Buffer.from('\nlast@example.com,x\n')]));
    const error = await failure(run(file, 'latin', { batchSize: 10, chunkBytes: 64 }));
    expect(error.code).toBe('CSV_ENCODING');
    expect(error.message).toContain('line 32');
    expect(await recipients(context.store(), 'latin')).toEqual([
      { email: 'keep@example.com', domain: 'example.com', data: { name: 'before' } },
    ]);
    const failed = await context
      .store()
      .db.selectFrom('imports')
      .selectAll()
      .where('file_name', '=', file.split('/').pop() as string)
      .executeTakeFirstOrThrow();
    expect(failed).toMatchObject({ state: 'failed', imported_count: 0 });
    expect(failed.error).toContain('CSV_ENCODING');
    const staged = await context
      .store()
      .db.selectFrom('import_rows')
      .select('id')
      .where('import_id', '=', failed.id)
      .execute();
    expect(staged).toEqual([]);
  });

  it('keeps commas and CR/LF inside quoted fields as data, reporting later lines correctly', async () => {
    // Lines: 1 header, 2-4 a@ (two CRLF inside a field), 5-6 b@ (an LF inside a field), 7 the bad row.
    const file = csv(
      'email,note,sig\r\n"a@example.com","one, two","line1\r\nSubject: injected\r\nline3"\r\nb@example.com,"x\ny",z\nnot-an-address,q,r\n',
    );
    const summary = await run(file, 'quoted');
    expect(summary).toMatchObject({ read: 3, imported: 2, rejected: 1, rejects: [{ line: 7, reason: 'missing_at' }] });
    const rows = await recipients(context.store(), 'quoted');
    expect(rows[0]?.data).toEqual({ note: 'one, two', sig: 'line1\r\nSubject: injected\r\nline3' });
    expect(rows[1]?.data).toEqual({ note: 'x\ny', sig: 'z' });
  });

  it('stops every apply connection at a failure while applying, says to run the import again, and the second run completes the list', async () => {
    const file = csv(`email,n\n${Array.from({ length: 9 }, (_, i) => `r${i}@example.com,${i}\n`).join('')}`);
    const error = await failure(
      run(file, 'apply-failure', {
        batchSize: 2,
        onProgress: (p) => {
          if (p.phase === 'applying' && p.applied > 0) throw new Error('disk full (simulated)');
        },
      }),
    );
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toMatch(
      /^import \d+ failed while applying to the list; run the same import again to complete it: disk full \(simulated\)$/,
    );
    const failed = await context
      .store()
      .db.selectFrom('imports')
      .selectAll()
      .where('file_name', '=', file.split('/').pop() as string)
      .executeTakeFirstOrThrow();
    expect(failed).toMatchObject({ state: 'failed', read_count: 9, imported_count: 0 });
    expect(
      await context.store().db.selectFrom('import_rows').select('id').where('import_id', '=', failed.id).execute(),
    ).toEqual([]);
    const partial = (await recipients(context.store(), 'apply-failure')).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(9);

    const again = await run(file, 'apply-failure', { batchSize: 2 });
    expect(again).toMatchObject({ read: 9, imported: 9 - partial, updated: partial, rejected: 0 });
    expect((await recipients(context.store(), 'apply-failure')).map((r) => r.data.n)).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
    ]);
  });

  it.each([
    [
      'before applying',
      (p: ImportProgress) => p.phase === 'reading' && p.rows === 9,
      '7 staged rows were expected and 5 found',
    ],
    ['while applying', (p: ImportProgress) => p.phase === 'applying' && p.applied > 0, 'staged rows were expected and'],
  ])(
    'never finishes an import whose staged rows vanished %s (PostgreSQL empties the unlogged staging table on a crash restart)',
    async (moment, when, expected) => {
      const file = csv(
        `email,n\n${Array.from({ length: 9 }, (_, i) => (i === 3 || i === 5 ? `bad${i},${i}\n` : `v${i}@example.com,${i}\n`)).join('')}`,
      );
      const db = context.store().db;
      let deleted = false;
      const error = await failure(
        run(file, `vanished-${moment}`, {
          batchSize: 3,
          onProgress: async (p) => {
            if (deleted || !when(p)) return;
            deleted = true;
            const current = await db
              .selectFrom('imports')
              .select('id')
              .where('file_name', '=', file.split('/').pop() as string)
              .executeTakeFirstOrThrow();
            const [first, second] = await db
              .selectFrom('import_rows')
              .select('id')
              .where('import_id', '=', current.id)
              .orderBy('id', 'desc')
              .limit(2)
              .execute();
            await db
              .deleteFrom('import_rows')
              .where('id', 'in', [first?.id ?? 0, second?.id ?? 0])
              .execute();
          },
        }),
      );
      expect(error.code).toBe('INTERNAL');
      expect(error.message).toContain(expected);
      expect(error.message).toContain('run the same import again to complete it');
      const record = await db
        .selectFrom('imports')
        .selectAll()
        .where('file_name', '=', file.split('/').pop() as string)
        .executeTakeFirstOrThrow();
      expect(record.state).toBe('failed');
    },
  );

  it('stores backslashes, tabs, quotes and NULs exactly, in addresses and data (staged as COPY text or NUL-separated values)', async () => {
    const email = '"quote\\"d"@example.com';
    const csvEmail = `"${email.replace(/"/g, '""')}"`;
    const file = csv(
      `email,path,cell\n${csvEmail},C:\\new\\table,"a\tb\\tc"\nplain@example.com,\\\\,\\N\nnul@example.com,a\0b,\0\n`,
    );
    expect(await run(file, 'escapes')).toMatchObject({ read: 3, imported: 3, rejected: 0 });
    expect(await recipients(context.store(), 'escapes')).toEqual([
      { email, domain: 'example.com', data: { path: 'C:\\new\\table', cell: 'a\tb\\tc' } },
      { email: 'nul@example.com', domain: 'example.com', data: { path: 'a\0b', cell: '\0' } },
      { email: 'plain@example.com', domain: 'example.com', data: { path: '\\\\', cell: '\\N' } },
    ]);
  });

  it('keeps a rejected row that quotes a NUL (PostgreSQL text cannot hold one): the import goes on, the NUL spelled \\0', async () => {
    const file = csv('email,name\nann@example.com,Ann\nno\0at,x\nbob@a\0b.com,y\ncid@example.com,Cid\n');
    expect(await run(file, 'nul-rejects')).toMatchObject({ read: 4, imported: 2, rejected: 2 });
    const stored = await listRejects(context.store(), (await run(file, 'nul-rejects')).importId, { limit: 10 });
    expect(stored.map(({ line, reason, message, excerpt }) => ({ line, reason, message, excerpt }))).toEqual([
      { line: 3, reason: 'missing_at', message: 'no @ in the address', excerpt: 'no\\0at,x' },
      {
        line: 4,
        reason: 'invalid_domain',
        message: 'a\\0b.com is not a valid domain name',
        excerpt: 'bob@a\\0b.com,y',
      },
    ]);
    expect((await recipients(context.store(), 'nul-rejects')).map((r) => r.email)).toEqual([
      'ann@example.com',
      'cid@example.com',
    ]);
  });

  it('writes a staging batch once it holds maxBatchBytes of rows, whatever its row count', async () => {
    const blob = 'x'.repeat(50_000);
    const lines = Array.from({ length: 100 }, (_, i) => `big${i}@example.com,${blob}`);
    const progress: ImportProgress[] = [];
    const file = csv(`email,blob\n${lines.join('\n')}\n`);
    const summary = await run(file, 'big-rows', { maxRecordBytes: 64 * 1024, onProgress: (p) => progress.push(p) });
    expect(summary).toMatchObject({ read: 100, imported: 100, rejected: 0 });
    // 100 rows of ~50 KB: one batch of 5,000 rows would hold them all; the first batch ends at 4 MiB.
    const staged = progress.filter((p) => p.phase === 'reading').map((p) => p.rows);
    expect(staged).toEqual([Math.ceil(maxBatchBytes / 50_050), 100]);
  });

  it('strips a UTF-8 byte order mark before the header', async () => {
    const summary = await run(csv('\ufeffemail,name\nbom@example.com,B\n'), 'bom');
    expect(summary).toMatchObject({ read: 1, imported: 1 });
    expect((await recipients(context.store(), 'bom'))[0]?.data).toEqual({ name: 'B' });
  });

  it('fails on a record over import.maxRecordBytes and leaves the list as it was', async () => {
    const file = csv(`email,bio\nok@example.com,short\nbig@example.com,"${'x'.repeat(2_000)}"\n`);
    const error = await failure(run(file, 'oversized', { maxRecordBytes: 512 }));
    expect(error.code).toBe('CSV_TOO_LARGE');
    expect(error.message).toContain('line 3');
    expect(await recipients(context.store(), 'oversized')).toEqual([]);
  });

  it('names the line where a quote was left open, not where the parser gave up', async () => {
    // The quote opens at line 3; the record swallows the rest of the file until it outgrows the limit.
    const rows = Array.from({ length: 200 }, (_, i) => `u${i}@example.com,N${i}`);
    const swallowing = csv(`email,n\nok@example.com,x\nopen@example.com,"Ann\n${rows.join('\n')}\n`);
    const tooLarge = await failure(run(swallowing, 'open-quote', { maxRecordBytes: 1024 }));
    expect(tooLarge.code).toBe('CSV_TOO_LARGE');
    expect(tooLarge.message).toMatch(
      /the record starting at line 3 is over import\.maxRecordBytes \(1024 bytes\) by line \d+;/,
    );
    expect(tooLarge.details.line).toBe(3);
    const endsInside = await failure(
      run(csv('email,n\r\na@example.com,"a\r\nb"\r\nb@example.com,"open\nc@example.com,x\n'), 'open-end'),
    );
    expect(endsInside.message).toContain('line 4: a quote opened in the record starting there is never closed');
  });

  it('names the line of a stray quote after quoted fields broken by CRLF', async () => {
    // Lines 2-3 and 4-5 are two records; the stray quote is on line 6. csv-parse counts each CRLF
    // inside a field twice, and the records it parsed in the same read are dropped with its error.
    const file = csv('email,n\r\na@example.com,"x\r\ny"\r\nb@example.com,"x\r\ny"\r\nc@example.com,x"y"z\r\n');
    const stray = await failure(run(file, 'stray-quote'));
    expect(stray.code).toBe('CSV_UNREADABLE');
    expect(stray.message).toContain('line 6: Invalid Opening Quote');
    expect(stray.details.line).toBe(6);
  });

  it('fails on an unclosed quote with the line, and on a missing or empty file', async () => {
    const unclosed = await failure(run(csv('email,n\na@example.com,"open\nb@example.com,x\n'), 'broken'));
    expect(unclosed.code).toBe('CSV_UNREADABLE');
    expect(unclosed.message).toContain('line 2:');
    expect((await failure(run(csv(''), 'empty'))).code).toBe('CSV_NO_EMAIL_COLUMN');
    expect((await failure(run(join(dir, 'missing.csv'), 'missing'))).code).toBe('CSV_UNREADABLE');
    const headerOnly = await run(csv('email\n'), 'header-only');
    expect(headerOnly).toMatchObject({ read: 0, imported: 0, updated: 0, rejected: 0 });
  });
});

// Without a file there is no second connection: the main thread stages the rows itself.
it('imports into an in-memory SQLite database: merges, repeats and the later row winning', async () => {
  const store = openStore('sqlite::memory:');
  try {
    await migrateToLatest(store);
    const file = csv('email,plan\na@example.com,free\nb@example.com,"x\ty"\nA@EXAMPLE.COM,other\na@example.com,pro\n');
    const summary = await importRecipients({
      store,
      file,
      list: 'memory',
      clock: manualClock(),
      ...limits,
      batchSize: 2,
    });
    expect(summary).toMatchObject({ read: 4, imported: 3, updated: 1, rejected: 0, repeated: 2 });
    expect((await recipients(store, 'memory')).map((r) => [r.email, r.data.plan])).toEqual([
      ['A@example.com', 'other'],
      ['a@example.com', 'pro'],
      ['b@example.com', 'x\ty'],
    ]);
  } finally {
    await store.close();
  }
});
