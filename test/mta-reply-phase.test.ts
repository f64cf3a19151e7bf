import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClassifierSource } from '../src/bounce/qualification-classifier.ts';
import { createReplyClassifier } from '../src/bounce/reply-classifier.ts';
import { configSchema } from '../src/config/schema.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { describeEachDialect } from './support/databases.ts';
import { drainMta } from './support/drain-mta.ts';

// The bounce rules read the SMTP command a reply answered ("No such user here" names the recipient
// only in reply to RCPT TO; a refused MAIL FROM is about our sender, never the recipient). The MTA
// never said it: "550 No such user here" at RCPT TO was a soft `filtered`, retried until the
// delivery expired, and the address never quarantined.

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({
    scenario: {
      domains: [
        {
          name: 'nosuch.test',
          weight: 1,
          behaviour: 'user unknown, no status',
          mx: [{ exchange: 'mx.nosuch.test', priority: 10 }],
        },
      ],
      hosts: [
        {
          name: 'mx.nosuch.test',
          kind: 'sink',
          behaviour: { rcptRules: [{ localPartPrefix: 'gone', reply: { code: 550, text: 'No such user here' } }] },
        },
      ],
    },
  });
});
afterAll(async () => {
  await simulator.close();
});

describeEachDialect('a refusal qualified by the command it answered', (context) => {
  it('"550 No such user here" in reply to RCPT TO is a hard user_unknown', async () => {
    const classifiers = await createClassifierSource({
      siteRulesFile: join(mkdtempSync(join(tmpdir(), 'herald-site-')), 'bounce.yaml'),
      checkMs: 0,
    });
    const { db } = context.store();
    const { deliveryId } = await seedDelivery(db, {
      now: Date.now(),
      recipients: [{ email: `gone.${context.dialect}@nosuch.test`, data: { first_name: 'Pat' } }],
    });
    const mta = createMta({
      store: createMtaStore(context.store()),
      nodeId: `phase-${context.dialect}`,
      config: configSchema.parse({
        mta: { routes: simulator.routes, resolverServers: [simulator.dnsServer], pollIntervalMs: 20 },
      }).mta,
      classify: createReplyClassifier(() => classifiers.current()),
    });
    await drainMta(mta);
    const log = await db
      .selectFrom('delivery_logs')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .executeTakeFirst();
    expect(log).toMatchObject({
      status: 'failed',
      last_reply_code: 550,
      failure_type: 'hard',
      failure_reason: 'user_unknown',
      failure_category: 'userunknown',
    });
  });
});
