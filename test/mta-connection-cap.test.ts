import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { configSchema } from '../src/config/schema.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { describeEachDialect } from './support/databases.ts';
import { startSinkProcess, type SinkProcess } from './support/sink-process.ts';
import { drainMta } from './support/drain-mta.ts';

// Issue 12 item 8: maxConnections holds as the remote server counts sessions. The server counts a
// session until it has read our FIN, which can be after our socket reports 'close'; a connection
// opened at once in its place made the sink see maxConnections + 1. Every message on its own
// connection (maxMessagesPerConnection 1) makes a replacement per message; the sink runs in its own
// process, and two threads burning CPU make it late, as on a loaded machine. The slot is held for
// mta.connectionCloseGraceMs after the close: 500 ms here, as the suite runs beside other heavy
// processes (CI saw the sink more than 100 ms late at a load of 12 on 2 cores).

let sink: SinkProcess;
let burners: Worker[] = [];
beforeAll(async () => {
  sink = await startSinkProcess('mx.cap.test');
  burners = Array.from(
    { length: 2 },
    () => new Worker('const end = Date.now() + 120_000; while (Date.now() < end) {}', { eval: true }),
  );
});
afterAll(async () => {
  await Promise.all(burners.map((burner) => burner.terminate()));
  await sink.close();
});

describeEachDialect('connection cap as the sink sees it', (context) => {
  it('never more than maxConnectionsPerMx sessions at the sink, with a new connection per message', async () => {
    const domain = `cap-${context.dialect}.test`;
    const before = await sink.stats();
    const count = 30;
    await seedDelivery(context.store().db, {
      now: Date.now(),
      recipients: Array.from({ length: count }, (_, i) => ({ email: `r${i}@${domain}`, data: { first_name: 'Pat' } })),
    });
    const config = configSchema.parse({
      mta: {
        routes: [{ match: domain, host: sink.host, port: sink.port }],
        resolverServers: ['127.0.0.1:9'],
        pollIntervalMs: 20,
        maxConnectionsPerMx: 3,
        maxMessagesPerConnection: 1,
        connectionCloseGraceMs: 500,
      },
    }).mta;
    const mta = createMta({ store: createMtaStore(context.store()), nodeId: `cap-${context.dialect}`, config });
    await drainMta(mta);
    const stats = await sink.stats();
    expect(stats.messagesAccepted - before.messagesAccepted).toBe(count);
    expect(stats.connections - before.connections).toBeGreaterThanOrEqual(count);
    expect(stats.maxConcurrentSessions).toBeLessThanOrEqual(3);
  });
});
