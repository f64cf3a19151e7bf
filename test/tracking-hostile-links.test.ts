import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAddressPredicate } from '../src/audience/address.ts';
import { importRecipients } from '../src/audience/csv-import.ts';
import { silentLogger } from '../src/common/logger.ts';
import { composeMta } from '../src/compose-mta.ts';
import { parseConfig } from '../src/config/load.ts';
import { createDelivery } from '../src/delivery/delivery-store.ts';
import { startDelivery } from '../src/delivery/lifecycle.ts';
import { preparationStore, prepareDelivery } from '../src/delivery/preparation.ts';
import { summarizeDelivery } from '../src/delivery/summary.ts';
import { openHerald } from '../src/main.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { createTrackingService } from '../src/tracking/service.ts';
import { describeEachDialect } from './support/databases.ts';
import { deliveryDefinition } from './support/fixtures.ts';
import { waitFor } from './support/wait.ts';

// An attacker who controls a CSV column that a template uses as a whole href (`{{ website }}`):
// imported, prepared, sent to the simulator, then the received message read and its links followed
// over HTTP on a real tracking server. Only http(s) becomes a tracked link and mailto stays; any
// other scheme, however spelt, leaves no link in the message nor on the mirror page.

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ keepMessages: true, greylistDelayMs: 0 });
});
afterAll(async () => {
  await simulator.close();
});

const websites: Record<string, string> = {
  js: 'javascript:alert(document.domain)',
  mixedcase: 'JaVaScRiPt:alert(1)',
  spaced: ' \t javascript:alert(1)',
  tabbed: 'java\tscript:alert(1)',
  control: '\u0001javascript:alert(1)',
  data: 'data:text/html,<script>alert(1)</script>',
  vbscript: 'vbscript:msgbox(1)',
  web: 'https://shop.example/ann',
  mail: 'mailto:ann@shop.example',
};

describeEachDialect('links built from recipient data', (context) => {
  it('are tracked when http(s), kept when mailto, and removed otherwise, in the message and on the mirror page', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-hostile-links-'));
    const csv = join(dir, 'hostile.csv');
    const rows = Object.entries(websites).map(
      ([name, site]) => `${name}.${context.dialect}@accept.test,"${site.replace(/"/g, '""')}"`,
    );
    writeFileSync(csv, ['email,website', ...rows].join('\r\n'));
    const config = parseConfig(
      {
        database: { url: context.url() },
        tracking: { baseUrl: 'https://t.brand.test', host: '127.0.0.1', port: 0 },
        mta: { routes: simulator.routes, resolverServers: [simulator.dnsServer], pollIntervalMs: 50 },
      },
      'test',
    );
    const herald = await openHerald({ config, logger: silentLogger });
    const tracking = await createTrackingService(herald);
    try {
      await importRecipients({
        store: herald.store,
        file: csv,
        list: 'hostile',
        maxFileBytes: config.import.maxFileBytes,
        maxRecordBytes: config.import.maxRecordBytes,
        clock: herald.clock,
      });
      const delivery = await createDelivery(
        herald.store,
        deliveryDefinition({
          listName: 'hostile',
          html: '<html><body><a href="{{ website }}">Site</a> <a href="{{ website | raw }}">Raw</a> <a href="{{ mirror_url }}">Online</a> <a data-herald-track="off" href="{{ website }}">Off</a></body></html>',
        }),
        { validityHours: 1 },
        Date.now(),
      );
      const prepared = await prepareDelivery(preparationStore(herald.store), delivery.id, {
        batchSize: 100,
        clock: herald.clock,
        isValidAddress: createAddressPredicate(),
      });
      // The operator is told, per link, how many messages go without it and which field to look at.
      if (prepared.kind !== 'prepared') throw new Error(JSON.stringify(prepared));
      expect(prepared.warnings.map((w) => [w.code, w.link, w.recipients, w.variables])).toEqual([
        ['LINK_REFUSED', 1, 7, ['website']],
        ['LINK_REFUSED', 2, 7, ['website']],
        ['LINK_REFUSED', null, 7, ['website']],
      ]);
      expect(prepared.warnings[0]!.message).toMatch(
        /^link 1 \(\{\{ website \}\}\) is not a link for 7 recipient\(s\).*\w+\.\w+@accept\.test has ".+", scheme (javascript|data|vbscript):.*check website in the list$/,
      );
      expect((await summarizeDelivery(herald.store, delivery.id)).preparationWarnings).toEqual(prepared.warnings);
      await startDelivery(herald.store, delivery.id, Date.now());
      const composed = await composeMta(herald);
      await composed.start();
      try {
        await waitFor(
          () =>
            Object.keys(websites).every(
              (name) => simulator.acceptedCount(`${name}.${context.dialect}@accept.test`) > 0,
            ),
          'every message to be accepted',
        );
      } finally {
        await composed.stop();
      }
      const server = await tracking.listen();
      const follow = (url: string) => fetch(url.replace('https://t.brand.test', server), { redirect: 'manual' });
      for (const [name, site] of Object.entries(websites)) {
        const html = htmlOf(`${name}.${context.dialect}@accept.test`);
        const anchors = [...html.matchAll(/<a\b[^>]*>/g)].map((m) => m[0]);
        expect(anchors, name).toHaveLength(4);
        const mirror = /href="(https:\/\/t\.brand\.test\/m\/[\w-]+)"/.exec(anchors[2]!)![1]!;
        const page = await (await follow(mirror)).text();
        if (name === 'web') {
          for (const anchor of anchors.slice(0, 2)) {
            const tracked = /href="(https:\/\/t\.brand\.test\/r\/[\w-]+)"/.exec(anchor)![1]!;
            const click = await follow(tracked);
            expect(click.status).toBe(302);
            expect(click.headers.get('location')).toBe(site);
          }
          expect(anchors[3]).toBe(`<a data-herald-track="off" href="${site}">`);
        } else if (name === 'mail') {
          expect(anchors.slice(0, 2)).toEqual([`<a href="${site}">`, `<a href="${site}">`]);
          expect(anchors[3]).toBe(`<a data-herald-track="off" href="${site}">`);
        } else {
          expect(anchors.slice(0, 2), name).toEqual(['<a >', '<a >']);
          expect(anchors[3], name).toBe('<a data-herald-track="off" >');
          expect(page, name).toContain('<a >Site</a> <a >Raw</a>');
          expect(page, name).not.toMatch(/script:|data:/i);
        }
      }
    } finally {
      await tracking.close();
      await herald.close();
    }
  });
});

/** The HTML part of the message the simulator accepted for `email`, quoted-printable decoded. */
function htmlOf(email: string): string {
  const kept = [...simulator.sinks.values()]
    .flatMap((sink) => sink.keptMessages)
    .find((m) => m.recipients.includes(email));
  const raw = kept!.data.toString('latin1');
  const part = raw.slice(raw.indexOf('<html>'), raw.indexOf('</html>') + 7);
  return part
    .replace(/=\r\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
