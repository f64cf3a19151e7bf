import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../src/common/logger.ts';
import { composeMta } from '../src/compose-mta.ts';
import { loadVerpSigner } from '../src/bounce/verp-keys.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { verifyDkimSignatures } from '../src/mta/dkim-verify.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { describeEachDialect } from './support/databases.ts';
import { waitFor } from './support/wait.ts';

// The MTA as `herald start` assembles it: links tracked, open pixel, RFC 8058 headers covered by DKIM.

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ keepMessages: true });
});
afterAll(async () => {
  await simulator.close();
});

describeEachDialect('composed MTA with tracking', (context) => {
  it('rewrites links, adds the pixel and signs the List-Unsubscribe headers', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = join(mkdtempSync(join(tmpdir(), 'herald-dkim-')), 'key.pem');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const config = parseConfig(
      {
        database: { url: context.url() },
        tracking: { baseUrl: 'https://t.brand.test' },
        mta: {
          routes: simulator.routes,
          resolverServers: [simulator.dnsServer],
          pollIntervalMs: 50,
          dkim: [{ domain: 'brand.test', selector: 's1', privateKeyFile: keyFile }],
        },
      },
      'test',
    );
    const herald = await openHerald({ config, logger: silentLogger });
    const email = `tracked.${context.dialect}@accept.test`;
    const { logIds } = await seedDelivery(herald.store.db, {
      now: Date.now(),
      recipients: [{ email, data: { first_name: 'Ann' } }],
      html: '<p>Hi {{ first_name }}, <a href="https://shop.example/sale">sale</a> <a data-herald-track="off" href="https://example.com/legal">legal</a></p>',
    });
    const composed = await composeMta(herald);
    const verp = await loadVerpSigner(herald.store, config, Date.now());
    await composed.start();
    try {
      await waitFor(() => simulator.acceptedCount(email) > 0, 'the tracked message to be accepted');
    } finally {
      await composed.stop();
      await herald.close();
    }
    const kept = [...simulator.sinks.values()]
      .flatMap((sink) => sink.keptMessages)
      .find((m) => m.recipients.includes(email))!;
    // The envelope sender is the signed VERP address the inbound role verifies.
    const sender = /^bounce\+([^@]+)@bounces\.herald\.invalid$/.exec(kept.sender ?? '');
    expect(sender, kept.sender ?? '').not.toBeNull();
    expect(verp.verify(sender![1]!, Date.now())).toBe(logIds[0]);
    expect(verp.verify(String(logIds[0]), Date.now())).toBeUndefined();
    const raw = kept.data.toString('latin1');
    expect(raw).toMatch(/^List-Unsubscribe: <https:\/\/t\.brand\.test\/u\/[A-Za-z0-9_-]+>/m);
    expect(raw).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click/m);
    const body = raw.replace(/=\r\n/g, '').replace(/=3D/g, '=');
    expect(body).toContain('href="https://t.brand.test/r/');
    expect(body).not.toContain('href="https://shop.example/sale"');
    expect(body).toContain('href="https://example.com/legal"');
    expect(body).toMatch(/<img[^>]+src="https:\/\/t\.brand\.test\/o\//);
    const [check] = verifyDkimSignatures(raw, () => publicKey);
    expect(check).toMatchObject({ bodyHashOk: true, signatureOk: true });
    expect(raw).toMatch(/h=[^;]*list-unsubscribe:list-unsubscribe-post/);
  });
});
