import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { midsourcingCheck } from '../src/doctor/check-midsourcing.ts';
import { doctorSettings } from '../src/doctor/finding.ts';
import { readDoctorSnapshot } from '../src/doctor/read-snapshot.ts';
import { defaultMidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import { createPeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { syncAll } from '../src/midsourcing/sync.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { midSyncCountersWorkflow } from '../src/midsourcing/workflows.ts';
import type { Store } from '../src/store/database.ts';
import { openMigratedDatabase, postgresUnavailable, testDialects, type TestDatabase } from './support/databases.ts';

// The operator at 3 a.m.: a pushed delivery that does not move because its execution instance refuses
// it or is down. The doctor must say so, and why, even while the workflows keep retrying.

const secret = 'doctor-test-shared-secret-0123456789';
const minute = 60_000;

for (const dialect of testDialects) {
  describe.skipIf(dialect === 'postgres' && postgresUnavailable !== undefined)(
    `the doctor on a stuck pushed delivery [marketing ${dialect}]`,
    () => {
      const clock = manualClock(Date.UTC(2026, 5, 1, 9));
      let marketing: { store: Store; database: TestDatabase };
      let execution: { store: Store; database: TestDatabase };
      let server: ExecutionServer;

      beforeAll(async () => {
        marketing = await openMigratedDatabase(dialect);
        execution = await openMigratedDatabase('sqlite');
        server = await startExecutionServer({
          store: execution.store,
          config: { ...defaultMidsourcingConfig(), mode: 'execution', peers: [{ name: 'marketing-1', secret }] },
          clock,
          host: '127.0.0.1',
          port: 0,
        });
      });
      afterAll(async () => {
        await server?.close();
        await marketing?.store.close();
        await execution?.store.close();
        await marketing?.database.drop();
        await execution?.database.drop();
      });

      const configWith = (peerSecret: string, url = server.url) =>
        parseConfig(
          {
            midsourcing: {
              mode: 'marketing',
              name: 'marketing-1',
              maxAttempts: 2,
              retryBaseMs: 1,
              retryMaxMs: 2,
              requestTimeoutMs: 2_000,
              peers: [{ name: 'exec-1', url, secret: peerSecret }],
            },
          },
          'test',
        );
      const doctor = async (deliveryId: number) => {
        const config = configWith(secret);
        const settings = doctorSettings(config);
        const snapshot = await readDoctorSnapshot({
          store: marketing.store,
          config,
          settings,
          now: clock.now(),
          deliveryId,
          skipConfiguration: true,
        });
        return midsourcingCheck
          .run(snapshot, clock.now(), settings)
          .filter((finding) => finding.subject === `delivery ${deliveryId}`);
      };
      const seed = (name: string) =>
        seedPreparedDelivery(marketing.store, {
          name,
          recipients: [0, 1, 2].map((i) => ({ email: `${name}${i}@accept.test`, data: { first_name: 'D' } })),
          validitySeconds: 3600,
          clock,
        });

      // A push to the configured peer (exec-1), with two quick attempts per call.
      const push = async (deliveryId: number, config: ReturnType<typeof configWith>) => {
        const client = createPeerClient({
          peer: config.midsourcing.peers[0]!,
          localName: 'marketing-1',
          timeoutMs: 2_000,
          clock,
        });
        const retry = { maxAttempts: 2, baseMs: 1, maxMs: 2 };
        try {
          return await pushDelivery({
            store: marketing.store,
            client,
            deliveryId,
            partSize: 10,
            inFlight: 1,
            retry,
            clock,
          });
        } finally {
          client.close();
        }
      };

      it('reports a push refused for a wrong key while mid-sync-counters keeps resuming it, and says what to compare', async () => {
        const { deliveryId } = await seed(`refused-${dialect}`);
        const config = configWith('a-wrong-shared-secret-9876543210');
        // The execution server cannot sign its BAD_SIGNATURE (nothing proves who asked), so the push
        // retries it like any unsigned answer, then gives up as unavailable.
        await expect(push(deliveryId, config)).rejects.toMatchObject({ code: 'MID_REMOTE_UNAVAILABLE' });
        // The workflow resumes the stalled push every 10 minutes (it fails the same way each time).
        const resume = midSyncCountersWorkflow.steps.find((step) => step.name === 'resume-pushes')!;
        for (let round = 0; round < 4; round++) {
          clock.advance(11 * minute);
          await resume.run({
            store: marketing.store,
            config,
            clock,
            logger: silentLogger,
            nodeId: 'n',
            runId: round,
            log: async () => {},
            keepAlive: async () => {},
          });
        }
        const [finding] = await doctor(deliveryId);
        expect(finding).toMatchObject({ severity: 'critical', subject: `delivery ${deliveryId}` });
        expect(finding!.symptom).toContain('has made no progress for 44 min');
        expect(finding!.cause).toContain('BAD_SIGNATURE');
        expect(finding!.cause).toContain("exec-1 does not accept this instance's signature");
        expect(finding!.cause).toContain('this answer was not signed by exec-1');
        expect(finding!.fix).toContain('the same secret');
      });

      it('reports a finalized delivery whose outcomes cannot be pulled back because its execution instance is down', async () => {
        const { deliveryId } = await seed(`down-${dialect}`);
        const config = configWith(secret);
        await push(deliveryId, config);
        expect(await doctor(deliveryId)).toEqual([]);
        // Port 9 (discard) is closed on loopback: the instance is down.
        const down = configWith(secret, 'http://127.0.0.1:9');
        for (let round = 0; round < 3; round++) {
          clock.advance(20 * minute);
          const pulled = await syncAll(marketing.store, down.midsourcing, 'logs', clock);
          expect(pulled.failed.length).toBeGreaterThan(0);
        }
        const [finding] = await doctor(deliveryId);
        expect(finding).toMatchObject({ severity: 'warning', subject: `delivery ${deliveryId}` });
        expect(finding!.symptom).toContain('are not coming back from exec-1: no log pulled for 1 h');
        expect(finding!.cause).toContain('ECONNREFUSED');
        expect(finding!.fix).toContain('herald start --roles mid');
        expect(finding!.fix).toContain('herald mid sync');
      });
    },
  );
}
