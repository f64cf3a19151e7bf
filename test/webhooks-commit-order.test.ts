import { createServer, type Server } from 'node:http';
import { sql } from 'kysely';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { updateDeliveryState } from '../src/delivery/delivery-store.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { heldBackWarningMs } from '../src/webhooks/commit-watermark.ts';
import { createWebhookDispatcher } from '../src/webhooks/dispatcher.ts';
import { createSubscription, removeSubscription } from '../src/webhooks/subscriptions.ts';
import { capturedLogger } from './support/captured-log.ts';
import { describeEachDialect } from './support/databases.ts';
import { onePreparedDelivery } from './support/fixtures.ts';
import { holdTransaction } from './support/held-transaction.ts';

// docs/webhooks.md promises that event ids increase, so a receiver may keep the last id it processed
// and ignore anything at or below it. On PostgreSQL an outbox id is taken when the event is written,
// not when its transaction commits: two MTA nodes (or the MTA and an operator) writing events at
// once commit them out of id order, and the dispatcher must not send an id while a smaller one may
// still appear.

describeEachDialect('webhook events committed out of id order', (context) => {
  const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));
  let herald: Herald;
  let receiver: Server;
  let url: string;
  const requests: number[][] = [];

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig(
        { database: { url: context.url() }, webhooks: { allowedNetworks: ['127.0.0.1/32'] } },
        'test',
      ),
      logger: silentLogger,
      clock,
    });
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const { events } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: Array<{ id: number }> };
        requests.push(events.map((event) => event.id));
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    await new Promise((resolve) => receiver.close(resolve));
    await herald?.close();
  });

  const subscribe = () =>
    createSubscription(herald.store, { url, events: ['delivery.state'] }, clock.now(), herald.config.webhooks);

  it.skipIf(context.dialect !== 'postgres')(
    'never sends an event id while a smaller one is still uncommitted (PostgreSQL)',
    async () => {
      const subscription = await subscribe();
      const [lateDelivery, earlyDelivery] = [
        await onePreparedDelivery(herald, 'late@b.example'),
        await onePreparedDelivery(herald, 'early@b.example'),
      ];
      const dispatcher = createWebhookDispatcher({ ...herald, config: herald.config.webhooks });

      // "late" writes its event first (the smaller id) and commits after "early".
      const late = await holdTransaction(herald.store, async (trx) => {
        await updateDeliveryState({ ...herald.store, db: trx }, lateDelivery, {
          to: 'in_progress',
          from: ['prepared'],
          now: clock.now(),
        });
      });
      await updateDeliveryState(herald.store, earlyDelivery, {
        to: 'in_progress',
        from: ['prepared'],
        now: clock.now(),
      });
      // Before: the early event went at once; the late one followed with a smaller id, which a
      // receiver keeping the last id it processed ignored as already seen (an event lost).
      await dispatcher.runOnce();
      await late.commit();
      await dispatcher.runOnce();
      await dispatcher.stop();

      const sent = requests.flat();
      expect(sent).toHaveLength(2);
      expect(sent).toEqual([...sent].sort((a, b) => a - b));
      await removeSubscription(herald.store, subscription.id);
    },
  );

  it.skipIf(context.dialect !== 'postgres')(
    'names the transaction that holds the events back a minute, once (PostgreSQL)',
    async () => {
      const subscription = await subscribe();
      const deliveryId = await onePreparedDelivery(herald, 'held@b.example');
      const { logger, lines: logged } = capturedLogger();
      const dispatcher = createWebhookDispatcher({ ...herald, logger, config: herald.config.webhooks });
      let pid = 0;
      // A session left in the middle of a transaction (psql after BEGIN and an UPDATE).
      const open = await holdTransaction(herald.store, async (trx) => {
        await updateDeliveryState({ ...herald.store, db: trx }, deliveryId, {
          to: 'in_progress',
          from: ['prepared'],
          now: clock.now(),
        });
        pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]!.pid;
      });
      await dispatcher.runOnce();
      clock.advance(heldBackWarningMs);
      await dispatcher.runOnce();
      await dispatcher.runOnce();
      // Before: nothing said why no webhook left.
      const warnings = logged.filter((line) => line.includes('webhook events wait for database transactions'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`pg_stat_activity pid ${pid}`);
      await open.commit();
      expect(await dispatcher.runOnce()).toBe(1);
      await dispatcher.stop();
      await removeSubscription(herald.store, subscription.id);
    },
  );
});
