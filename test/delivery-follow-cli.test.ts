import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';

// Issue 13 item 6: follow a delivery. `delivery show` counts failures over failed logs only (pending
// logs' last errors apart), `delivery logs` lists and exports per-recipient logs with filters,
// `delivery watch` follows it until it ends, `delivery stats` says when indicators were consolidated.

const dir = mkdtempSync(join(tmpdir(), 'herald-follow-'));

describeEachDialect('following a delivery', ({ store, url }) => {
  let id = 0;

  it('sets up a delivery with sent, failed and retrying logs', async () => {
    const csv = join(dir, 'r.csv');
    writeFileSync(
      csv,
      `email\n${Array.from({ length: 6 }, (_, i) => `u${i}@${i < 4 ? 'a' : 'b'}.example.com`).join('\n')}\n`,
    );
    expect((await runHerald(url(), ['import', 'recipients', csv, '--list', 'follow'])).exitCode).toBe(0);
    const body = join(dir, 'b.txt');
    writeFileSync(body, 'hello');
    const created = await runHerald(url(), [
      'delivery',
      'create',
      '--name',
      'follow',
      '--from',
      'news@example.com',
      '--subject',
      'Hi',
      '--text-file',
      body,
      '--list',
      'follow',
      '--json',
    ]);
    id = created.json<{ id: number }>()[0]!.id;
    expect((await runHerald(url(), ['delivery', 'prepare', String(id)])).exitCode).toBe(0);
    const db = store().db;
    const set = (email: string, values: Record<string, unknown>) =>
      db.updateTable('delivery_logs').set(values).where('delivery_id', '=', id).where('email', '=', email).execute();
    await set('u0@a.example.com', { status: 'sent', sent_at: Date.now(), attempts: 1 });
    await set('u1@a.example.com', {
      status: 'failed',
      failure_reason: 'user_unknown',
      failure_type: 'hard',
      last_reply_code: 550,
      last_reply_text: 'no such user',
      attempts: 1,
    });
    await set('u2@a.example.com', {
      status: 'pending',
      failure_reason: 'mailbox_full',
      failure_type: 'soft',
      attempts: 2,
    });
    await set('u3@a.example.com', {
      status: 'pending',
      failure_reason: 'mailbox_full',
      failure_type: 'soft',
      attempts: 2,
    });
    await set('u4@b.example.com', {
      status: 'failed',
      failure_reason: 'invalid_domain',
      failure_type: 'hard',
      attempts: 1,
    });
  });

  it('delivery show: failures over failed logs only; retrying apart', async () => {
    const show = await runHerald(url(), ['delivery', 'show', String(id), '--json']);
    expect(show.json()[0]).toMatchObject({
      byReason: { user_unknown: 1, invalid_domain: 1 },
      retryingByReason: { mailbox_full: 2 },
    });
    expect((show.json()[0] as { byReason: object }).byReason).not.toHaveProperty('mailbox_full');
    const text = await runHerald(url(), ['delivery', 'show', String(id)]);
    expect(text.stdout).toContain('  retrying because of: mailbox_full 2 (pending logs, by their last soft failure)');
  });

  it('delivery watch exits once the delivery has ended', async () => {
    await store().db.updateTable('deliveries').set({ state: 'stopped' }).where('id', '=', id).execute();
    const watch = await runHerald(url(), ['delivery', 'watch', String(id), '--json']);
    expect(watch.exitCode).toBe(0);
    const [tick] = watch.json<{
      summary: { state: string; failed: number };
      rate: null;
      binding: unknown[];
      findings: unknown[];
    }>();
    expect(tick).toMatchObject({ summary: { state: 'stopped', failed: 2 }, rate: null, binding: [] });
    const text = await runHerald(url(), ['delivery', 'watch', String(id)]);
    expect(text.stdout[0]).toMatch(/delivery \d+ stopped: sent 1, failed 2, pending 3/);
    expect(text.stdout[1]).toMatch(
      /^ {2}failures: (user_unknown 1, invalid_domain 1|invalid_domain 1, user_unknown 1)$/,
    );
  });

  it('delivery stats says when indicators were consolidated and offers the refresh', async () => {
    const stats = await runHerald(url(), ['delivery', 'stats', String(id)]);
    expect(stats.stdout.at(-1)).toBe(
      `  indicators not consolidated yet: \`herald delivery stats ${id} --refresh\` consolidates now`,
    );
  });
});
