import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { readDefinitionFile } from '../src/delivery/definition.ts';
import { preparationStore, prepareDelivery } from '../src/delivery/preparation.ts';
import { countLogs } from '../src/delivery/preparation-store.ts';
import { createDelivery, getDelivery } from '../src/delivery/delivery-store.ts';
import { describeEachDialect } from './support/databases.ts';
import { deliveryDefinition as definition, insertList } from './support/fixtures.ts';

const clock = manualClock();
const isValidAddress = (email: string) => /^[^@\s]+@[^@\s]+\.[a-z]{2,}$/.test(email);

describeEachDialect('preparation', (context) => {
  it('creates one log per recipient and counts exclusions by reason', async () => {
    const store = context.store();
    const recipients: Array<{ email: string; data: Record<string, string> }> = Array.from(
      { length: 2_500 },
      (_, i) => ({ email: `user${i}@accept.test`, data: { first_name: `U${i}` } }),
    );
    recipients.push({ email: 'not-an-address', data: { first_name: 'X' } });
    recipients.push({ email: 'blocked@accept.test', data: {} }, { email: 'complainer@accept.test', data: {} });
    await insertList(store, 'spring', recipients);
    await store.db
      .insertInto('addresses')
      .values([
        {
          email: 'blocked@accept.test',
          state: 'quarantined',
          error_count: 5,
          updated_at: 0,
          last_error_at: 0,
          reason: 'user_unknown',
        },
        {
          email: 'complainer@accept.test',
          state: 'denylisted',
          error_count: 0,
          updated_at: 0,
          last_error_at: null,
          reason: 'complaint',
        },
      ])
      .execute();
    const delivery = await createDelivery(store, definition(), { validityHours: 120 }, clock.now());
    const progress: number[] = [];
    const outcome = await prepareDelivery(preparationStore(store), delivery.id, {
      batchSize: 1_000,
      clock,
      isValidAddress,
      onProgress: (p) => progress.push(p.read),
    });
    expect(outcome.kind).toBe('prepared');
    if (outcome.kind !== 'prepared') return;
    expect(outcome.counts).toEqual({
      target: 2_503,
      prepared: 2_500,
      excluded: { invalid_address: 1, duplicate: 0, quarantined: 1, denylisted: 1 },
    });
    expect(progress).toEqual([1_000, 2_000, 2_503]);
    expect(await countLogs(store, delivery.id)).toBe(2_500);
    const row = await getDelivery(store, delivery.id);
    expect(row.state).toBe('prepared');
    expect(JSON.parse(row.exclusions)).toMatchObject({ quarantined: 1, denylisted: 1, invalid_address: 1 });
    expect(row.excluded_count).toBe(3);
  });

  it('fails on a template error naming template, line and recipient, and leaves no logs', async () => {
    const store = context.store();
    await insertList(store, 'broken', [
      { email: 'a@accept.test', data: { first_name: 'Ann' } },
      { email: 'b@accept.test', data: { last_name: 'Bee' } },
    ]);
    const delivery = await createDelivery(
      store,
      definition({ listName: 'broken', html: '<p>\n{% if first_name %}Hi{% endif %}\n{{ first_name }}</p>' }),
      { validityHours: 120 },
      clock.now(),
    );
    const outcome = await prepareDelivery(preparationStore(store), delivery.id, {
      batchSize: 10,
      clock,
      isValidAddress,
    });
    expect(outcome.kind).toBe('failed');
    if (outcome.kind !== 'failed') return;
    expect(outcome.error).toMatch(/html template, recipient b@accept\.test/);
    expect(outcome.error).toMatch(/line:3/);
    expect(await countLogs(store, delivery.id)).toBe(0);
    const row = await getDelivery(store, delivery.id);
    expect(row.state).toBe('preparation_failed');
    expect(row.last_error).toContain('b@accept.test');
  });

  it('checks every recipient: values of one data shape that break a template or a tracked link fail it, listed by recipient', async () => {
    const store = context.store();
    // All of one shape; the first renders. Before, only the first of each shape was checked and the
    // others failed at send time (the single name) or went out with a broken, untracked link.
    await insertList(store, 'values', [
      { email: 'ann@accept.test', data: { full_name: 'Ann Lee', shop: 'shop.example.com' } },
      { email: 'cher@accept.test', data: { full_name: 'Cher', shop: 'shop.example.com' } },
      { email: 'bob@accept.test', data: { full_name: 'Bob Ray', shop: 'shop example.com' } },
      { email: 'cid@accept.test', data: { full_name: 'Cid Moe', shop: 'shop.example.com' } },
    ]);
    const delivery = await createDelivery(
      store,
      definition({
        listName: 'values',
        html: '<p>\n{% assign parts = full_name | split: " " %}Dear {{ parts[1] }}\n<a href="https://{{ shop }}/offers">Offers</a></p>',
      }),
      { validityHours: 120 },
      clock.now(),
    );
    const outcome = await prepareDelivery(preparationStore(store), delivery.id, {
      batchSize: 10,
      clock,
      isValidAddress,
    });
    expect(outcome).toMatchObject({ kind: 'failed', code: 'TEMPLATE_RENDER' });
    if (outcome.kind !== 'failed') return;
    expect(outcome.error).toMatch(/2 recipient\(s\)/);
    expect(outcome.error).toMatch(/html template, recipient cher@accept\.test: undefined variable: parts\.1, line:2/);
    expect(outcome.error).toMatch(/recipient bob@accept\.test, line 3: link 1 .*"https:\/\/shop example\.com\/offers"/);
    expect(outcome.error).not.toMatch(/ann@|cid@/);
    // One problem per line, each starting with its template (the code is said once, in front).
    expect(
      outcome.error
        .split('\n')
        .slice(1)
        .map((line) => line.slice(0, 14)),
    ).toEqual(['html template,', 'html template,']);
    expect(await countLogs(store, delivery.id)).toBe(0);
  });

  it('treats case variants of an address as one recipient, counted as duplicate exclusions', async () => {
    const store = context.store();
    // The same mailboxes spelled several ways, across batches (batch size 2); a quarantined one in capitals.
    await insertList(store, 'variants', [
      { email: 'Ann@Example.com', data: { first_name: 'Ann' } },
      { email: 'Ann@example.com', data: { first_name: 'Ann2' } },
      { email: 'ann@example.com', data: { first_name: 'Ann3' } },
      { email: 'bob@x.test', data: {} },
      { email: 'bob@X.TEST', data: {} },
      { email: 'Gone@Example.com', data: {} },
    ]);
    await store.db
      .insertInto('addresses')
      .values({
        email: 'gone@example.com',
        state: 'quarantined',
        error_count: 5,
        updated_at: 0,
        last_error_at: 0,
        reason: 'user_unknown',
      })
      .execute();
    const prepare = async (foldLocalPartCase: boolean | undefined) => {
      const delivery = await createDelivery(
        store,
        definition({ listName: 'variants' }),
        { validityHours: 120 },
        clock.now(),
      );
      const outcome = await prepareDelivery(
        preparationStore(store, foldLocalPartCase === undefined ? {} : { foldLocalPartCase }),
        delivery.id,
        { batchSize: 2, clock, isValidAddress: () => true },
      );
      if (outcome.kind !== 'prepared') throw new Error(outcome.error);
      const emails = await store.db
        .selectFrom('delivery_logs')
        .select('email')
        .where('delivery_id', '=', delivery.id)
        .orderBy('id')
        .execute();
      return { counts: outcome.counts, emails: emails.map((row) => row.email) };
    };
    // The documented default folds the local part's case too: the first spelling of the list is kept.
    const folded = await prepare(undefined);
    expect(folded.emails).toEqual(['Ann@Example.com', 'bob@x.test']);
    expect(folded.counts.excluded).toEqual({ invalid_address: 0, duplicate: 3, quarantined: 1, denylisted: 0 });
    // delivery.foldLocalPartCase false: only the domain's case is folded (Ann@ and ann@ stay apart).
    const domainOnly = await prepare(false);
    expect(domainOnly.emails).toEqual(['Ann@Example.com', 'ann@example.com', 'bob@x.test']);
    expect(domainOnly.counts.excluded).toMatchObject({ duplicate: 2, quarantined: 1 });
  });

  it('refuses a delivery without a target and a second concurrent preparation', async () => {
    const store = context.store();
    const noTarget = await createDelivery(store, definition({ listName: null }), { validityHours: 120 }, clock.now());
    const outcome = await prepareDelivery(preparationStore(store), noTarget.id, {
      batchSize: 10,
      clock,
      isValidAddress,
    });
    expect(outcome).toMatchObject({ kind: 'failed', code: 'DELIVERY_NO_TARGET' });
    await expect(
      createDelivery(store, definition({ listName: 'nope' }), { validityHours: 120 }, clock.now()),
    ).rejects.toThrow(/list "nope" does not exist/);
  });
});

it('reads a YAML definition and reports a bad field with its line', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'herald-def-'));
  writeFileSync(join(dir, 'body.html'), '<p>Hi {{ first_name | default: "there" }}</p>');
  writeFileSync(
    join(dir, 'ok.yaml'),
    'name: Spring\nfrom: Herald <news@herald.test>\nsubject: Hi\nhtmlFile: body.html\nlist: spring\n',
  );
  const parsed = readDefinitionFile(join(dir, 'ok.yaml'));
  expect(parsed).toMatchObject({
    fromAddress: 'news@herald.test',
    fromName: 'Herald',
    html: expect.stringContaining('first_name'),
  });
  writeFileSync(
    join(dir, 'bad.yaml'),
    'name: Spring\nfrom: news@herald.test\nsubject: Hi\ntext: x\nvalidityHours: -3\nsubjet: typo\n',
  );
  expect(() => readDefinitionFile(join(dir, 'bad.yaml'))).toThrow(
    /bad\.yaml:5: validityHours: .*\n.*bad\.yaml:6: .*unknown key subjet/,
  );
  writeFileSync(join(dir, 'liquid.yaml'), 'name: S\nfrom: a@b.test\nsubject: "Hi {{ name | nofilter }}"\ntext: x\n');
  expect(() => readDefinitionFile(join(dir, 'liquid.yaml'))).toThrow(/subject template: undefined filter: nofilter/);
});
