import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { knownRoles } from '../src/roles.ts';
import { DEFAULT_QUARANTINE_SETTINGS, type AddressEvent } from '../src/quarantine/types.ts';
import { getAddress } from '../src/quarantine/quarantine-store.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';
import type { Store } from '../src/store/database.ts';
import { applyAddressEvents } from '../src/quarantine/address-events.ts';

const day = 86_400_000;

/** `email` quarantined by a hard SMTP reply at `at`. */
const userUnknown = {
  category: 'userunknown',
  reason: 'user_unknown',
  type: 'hard',
  ruleId: 'user-unknown',
  packVersion: 'p1',
} as const;

async function quarantineHard(store: Store, email: string, at: number): Promise<void> {
  await applyAddressEvents(
    store,
    [{ email, at, source: 'smtp', verdict: userUnknown }],
    DEFAULT_QUARANTINE_SETTINGS,
    at,
  );
}

/** p0000@domain … quarantined by one write at `at` (so they share one updated_at); their emails, sorted. */
async function quarantineNumbered(store: Store, domain: string, count: number, at: number): Promise<string[]> {
  const emails = Array.from({ length: count }, (_, i) => `p${String(i).padStart(4, '0')}@${domain}`);
  const events = emails.map((email) => ({ email, at, source: 'smtp' as const, verdict: userUnknown }));
  await applyAddressEvents(store, events, DEFAULT_QUARANTINE_SETTINGS, at);
  return emails;
}

describeEachDialect('herald quarantine', (context) => {
  it('lists, shows a timeline, releases a domain after an outage, allowlists', async () => {
    const store = context.store();
    const now = Date.now();
    const outage = now - 2 * 3_600_000;
    const blocked = {
      category: 'blocked' as const,
      reason: 'refused' as const,
      type: 'hard' as const,
      ruleId: 'ip-blocklist',
      packVersion: '2025.06-1',
    };
    const events: AddressEvent[] = [
      ...Array.from({ length: 30 }, (_, i) => ({
        email: `u${i}@bigisp.test`,
        at: outage + i,
        source: 'smtp' as const,
        verdict: blocked,
        deliveryId: 9,
        deliveryLogId: 100 + i,
        replyText: '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked',
      })),
      {
        email: 'long-ago@bigisp.test',
        at: now - 40 * day,
        source: 'smtp',
        verdict: { ...blocked, category: 'userunknown', reason: 'user_unknown' },
      },
      {
        email: 'spam@else.test',
        at: now,
        source: 'complaint',
        verdict: {
          category: 'feedback',
          reason: 'denylisted',
          type: 'ignored',
          ruleId: 'report.arf',
          packVersion: 'p1',
        },
      },
    ];
    await applyAddressEvents(store, events, DEFAULT_QUARANTINE_SETTINGS, now);

    const list = await runHerald(context.url(), [
      'quarantine',
      'list',
      '--state',
      'quarantined',
      '--domain',
      'bigisp.test',
      '--json',
    ]);
    expect(list.exitCode).toBe(0);
    const rows = list.json<Record<string, unknown>>();
    const counts = await runHerald(context.url(), ['quarantine', 'counts', '--json']);
    expect(counts.json()[0]).toMatchObject({ counts: { quarantined: 31, denylisted: 1 } });
    expect(rows).toHaveLength(31);
    expect(rows.find((r) => r.email === 'u0@bigisp.test')).toMatchObject({
      state: 'quarantined',
      reason: 'refused',
      errorCount: 0,
    });

    const show = await runHerald(context.url(), ['quarantine', 'show', 'U3@bigisp.test', '--json']);
    const shown = show.json<{ address: Record<string, unknown>; timeline: Array<Record<string, unknown>> }>()[0]!;
    expect(shown.address).toMatchObject({ email: 'u3@bigisp.test', state: 'quarantined' });
    expect(shown.timeline).toEqual([
      expect.objectContaining({
        source: 'smtp',
        deliveryId: 9,
        deliveryLogId: 103,
        ruleId: 'ip-blocklist',
        packVersion: '2025.06-1',
        stateBefore: 'valid',
        stateAfter: 'quarantined',
        replyText: expect.stringContaining('554 5.7.1'),
      }),
    ]);
    const text = await runHerald(context.url(), ['quarantine', 'show', 'u3@bigisp.test']);
    expect(text.stdout.join('\n')).toMatch(/quarantined.*rule ip-blocklist@2025\.06-1 delivery 9 log 103/);

    const since = new Date(outage - 3_600_000).toISOString();
    const dry = await runHerald(context.url(), [
      'quarantine',
      'release',
      '--domain',
      'bigisp.test',
      '--since',
      since,
      '--dry-run',
      '--json',
    ]);
    expect(dry.json()[0]).toMatchObject({ released: 30, dryRun: true });
    const released = await runHerald(context.url(), [
      'quarantine',
      'release',
      '--domain',
      'bigisp.test',
      '--since',
      since,
      '--note',
      'blocklist misfire',
      '--json',
    ]);
    expect(released.json()[0]).toMatchObject({ released: 30, dryRun: false });
    const after = (await runHerald(context.url(), ['quarantine', 'list', '--domain', 'bigisp.test', '--json'])).json<
      Record<string, unknown>
    >();
    expect(after.map((r) => r.email)).toEqual(['long-ago@bigisp.test']);
    const timeline = (await runHerald(context.url(), ['quarantine', 'show', 'u3@bigisp.test', '--json'])).json<{
      timeline: Array<Record<string, unknown>>;
    }>()[0]!.timeline;
    expect(timeline.at(-1)).toMatchObject({ source: 'operator', stateAfter: 'valid', note: 'blocklist misfire' });

    const allow = await runHerald(context.url(), ['quarantine', 'allowlist', 'seed@brand.test', '--json']);
    expect(allow.json()[0]).toMatchObject({ email: 'seed@brand.test', state: 'allowlisted' });
    expect(
      (await runHerald(context.url(), ['quarantine', 'release', 'spam@else.test', '--json'])).json()[0],
    ).toMatchObject({ released: 1 });

    const bad = await runHerald(context.url(), [
      'quarantine',
      'release',
      '--domain',
      'bigisp.test',
      '--since',
      'last tuesday',
      '--json',
    ]);
    expect(bad.exitCode).toBe(1);
    expect(bad.json()[0]).toMatchObject({ error: { code: 'INPUT_INVALID' } });
    expect((await runHerald(context.url(), ['quarantine', 'release', '--json'])).exitCode).toBe(1);
    expect(await getAddress(store, 'seed@brand.test')).toMatchObject({ state: 'allowlisted', reason: 'operator' });
    expect(await getAddress(store, 'spam@else.test')).toMatchObject({ state: 'valid' });
  });

  // Date.parse read "10" (ten days? the 10th?) as 1 October 2001 and "April 10" as 10 April 2001:
  // every quarantined address of the domain was released, hard bounces with the outage's.
  // "2026-02-30" was 2 March. Each is refused now, naming the forms accepted, and nothing changes.
  it('a bulk release refuses a --since that is not an ISO date, releasing nothing', async () => {
    const store = context.store();
    const now = Date.now();
    await quarantineHard(store, 'gone@olddomain.test', now - 400 * day);
    for (const since of ['10', 'April 10', '2026-02-30', '10/04/2026']) {
      const run = await runHerald(context.url(), [
        'quarantine',
        'release',
        '--domain',
        'olddomain.test',
        '--since',
        since,
        '--json',
      ]);
      expect(run.exitCode, since).toBe(1);
      expect(run.json()[0], since).toMatchObject({
        error: { code: 'INPUT_INVALID', message: expect.stringContaining('2026-04-10T06:00Z') },
      });
    }
    expect(await getAddress(store, 'gone@olddomain.test')).toMatchObject({ state: 'quarantined' });
    const iso = await runHerald(context.url(), [
      'quarantine',
      'release',
      '--domain',
      'olddomain.test',
      '--since',
      new Date(now - 401 * day).toISOString().slice(0, 16),
      '--json',
    ]);
    expect(iso.json()[0]).toMatchObject({ released: 1 });
  });

  // `--limit 10000000 --json` (an export) read every row into memory before printing; it now pages
  // by (updated_at, email): every address once, in order, across pages with equal times.
  it('lists past one page of addresses, each once and in order, up to --limit', async () => {
    const store = context.store();
    // One write: every address has the same updated_at, so the pages hold together by email alone.
    const order = await quarantineNumbered(store, 'paging.test', 2_300, Date.now() - 10 * day);
    const all = await runHerald(context.url(), [
      'quarantine',
      'list',
      '--domain',
      'paging.test',
      '--limit',
      '10000',
      '--json',
    ]);
    const listed = all.json().map((row) => (row as { email: string }).email);
    expect(listed).toHaveLength(2_300);
    expect(new Set(listed).size).toBe(2_300);
    expect(listed).toEqual(order);
    const some = await runHerald(context.url(), [
      'quarantine',
      'list',
      '--domain',
      'paging.test',
      '--limit',
      '1500',
      '--json',
    ]);
    expect(some.json().map((row) => (row as { email: string }).email)).toEqual(order.slice(0, 1_500));
  });

  // Each chunk of 500 commits on its own: a failure in the second said nothing of the 500 released.
  it('a bulk release failing midway says how many addresses it released before', async () => {
    const store = context.store();
    const at = Date.now() - 2 * day;
    await quarantineNumbered(store, 'partial.test', 600, at);
    // The database refuses to change one address of the second chunk (a full disk, a lost connection).
    if (context.dialect === 'sqlite')
      await sql`create trigger refuse_p0550 before update on addresses when new.email = 'p0550@partial.test'
        begin select raise(abort, 'refused by the test'); end`.execute(store.db);
    else {
      await sql`create function refuse_p0550() returns trigger language plpgsql as $$
        begin if new.email = 'p0550@partial.test' then raise exception 'refused by the test'; end if; return new; end $$`.execute(
        store.db,
      );
      await sql`create trigger refuse_p0550 before update on addresses for each row execute function refuse_p0550()`.execute(
        store.db,
      );
    }
    try {
      const run = await runHerald(context.url(), [
        'quarantine',
        'release',
        '--domain',
        'partial.test',
        '--since',
        new Date(at - day).toISOString().slice(0, 10),
        '--json',
      ]);
      expect(run.exitCode).toBe(1);
      expect(run.json()[0]).toMatchObject({
        error: {
          message: expect.stringContaining('released 500 address(es) before this failure, the rest untouched'),
          released: 500,
        },
      });
    } finally {
      await sql`drop trigger refuse_p0550${context.dialect === 'postgres' ? sql` on addresses` : sql``}`.execute(
        store.db,
      );
    }
    const valid = await store.db
      .selectFrom('addresses')
      .select('email')
      .where('email', 'like', '%@partial.test')
      .where('state', '=', 'valid')
      .execute();
    expect(valid).toHaveLength(500);
  });

  // The timeline was cut at its 200 most recent events without a word: the first error looked like the 201st.
  it('show says when older events are not shown, and keeps the most recent', async () => {
    const store = context.store();
    const start = Date.now() - 300 * 60_000;
    const verdict = {
      category: 'mailboxfull',
      reason: 'mailbox_full',
      type: 'soft',
      ruleId: 'm',
      packVersion: 'p',
    } as const;
    for (let i = 0; i < 205; i++)
      await applyAddressEvents(
        store,
        [{ email: 'busy@timeline.test', at: start + i * 60_000, source: 'smtp', verdict }],
        DEFAULT_QUARANTINE_SETTINGS,
        start + i * 60_000,
      );
    const json = await runHerald(context.url(), ['quarantine', 'show', 'busy@timeline.test', '--json']);
    const shown = json.json<{ timeline: Array<{ at: string }>; olderEventsNotShown: boolean }>()[0]!;
    expect(shown.olderEventsNotShown).toBe(true);
    expect(shown.timeline).toHaveLength(200);
    expect(shown.timeline.at(-1)!.at).toBe(new Date(start + 204 * 60_000).toISOString());
    const text = await runHerald(context.url(), ['quarantine', 'show', 'busy@timeline.test']);
    expect(text.stdout).toContain('(the 200 most recent events; older ones are not shown)');
  });

  // `release ADDRESS --since DATE` ignored --since and released the address whatever its date.
  it('refuses --since with one address instead of ignoring it, releasing nothing', async () => {
    const store = context.store();
    await quarantineHard(store, 'dated@olddomain.test', Date.now() - 400 * day);
    const run = await runHerald(context.url(), [
      'quarantine',
      'release',
      'dated@olddomain.test',
      '--since',
      new Date().toISOString().slice(0, 10),
      '--json',
    ]);
    expect(run.exitCode).toBe(1);
    expect(run.json()[0]).toMatchObject({
      error: { code: 'INPUT_INVALID', message: expect.stringContaining('--since goes with --domain') },
    });
    expect(await getAddress(store, 'dated@olddomain.test')).toMatchObject({ state: 'quarantined' });
  });

  // "denylist 'a@x.test, b@x.test'" stored one address named "a@x.test, b@x.test": it answered
  // denylisted and neither address was; an empty one failed with a TypeError.
  it('allowlist and denylist refuse what is not one address, changing nothing', async () => {
    const store = context.store();
    for (const [command, address] of [
      ['denylist', 'first@comma.test, second@comma.test'],
      ['allowlist', ' '],
      ['denylist', 'no-at-sign'],
    ] as const) {
      const run = await runHerald(context.url(), ['quarantine', command, address, '--json']);
      expect(run.exitCode, address).toBe(1);
      expect(run.json()[0], address).toMatchObject({ error: { code: 'INPUT_INVALID' } });
    }
    expect(await getAddress(store, 'first@comma.test, second@comma.test')).toBeUndefined();
    expect(await getAddress(store, 'no-at-sign')).toBeUndefined();
    const fine = await runHerald(context.url(), ['quarantine', 'denylist', ' First@Comma.test ', '--json']);
    expect(fine.json()[0]).toMatchObject({ email: 'first@comma.test', state: 'denylisted' });
  });

  // "--domain @bigisp.test" matched "%@@bigisp.test": "no address matches", "released 0", nothing said.
  it('reads --domain written with its @ as the domain', async () => {
    const store = context.store();
    const now = Date.now();
    await quarantineHard(store, 'x@at-sign.test', now);
    const list = await runHerald(context.url(), ['quarantine', 'list', '--domain', '@at-sign.test', '--json']);
    expect(list.json().map((row) => row.email)).toEqual(['x@at-sign.test']);
    const since = new Date(now - day).toISOString();
    const release = ['quarantine', 'release', '--domain', ' @AT-sign.test', '--since', since, '--json'];
    expect((await runHerald(context.url(), [...release, '--dry-run'])).json()[0]).toMatchObject({ released: 1 });
    expect((await runHerald(context.url(), release)).json()[0]).toMatchObject({ released: 1 });
    expect(await getAddress(store, 'x@at-sign.test')).toMatchObject({ state: 'valid' });
  });
});

it('herald start knows the inbound role', () => {
  expect(knownRoles()).toEqual(expect.arrayContaining(['mta', 'inbound']));
});
