import { get } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { describeEachDialect } from './support/databases.ts';
import { preparedDelivery } from './support/fixtures.ts';
import { createWebClient } from './support/web-client.ts';

// A viewer who starts the CSV export of a delivery's logs and goes away: the export must end with
// its client. Before, the page-by-page writer waited for a 'drain' a destroyed stream never emits,
// holding its last page of rows for ever; a viewer repeating it could grow the process without end.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));

describeEachDialect('dashboard log export, client gone', (context) => {
  let herald: Herald;
  let api: ApiApp;
  let url: string;
  let viewer: string;
  let deliveryId: number;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock,
    });
    viewer = (await createToken(herald.store, { role: 'viewer' }, clock.now())).token;
    deliveryId = await preparedDelivery(herald, 'big', 3_000, {
      name: 'Export',
      from: 'news@example.com',
      subject: 'Hi',
      text: 'Hello',
    });
    // About 9 MB of CSV: more than the socket buffers take, so the export is mid-way when the client goes.
    await context
      .store()
      .db.updateTable('delivery_logs')
      .set({ status: 'failed', last_reply_code: 550, last_reply_text: `5.1.1 ${'x'.repeat(3_000)}` })
      .where('delivery_id', '=', deliveryId)
      .execute();
    api = buildApiApp({ herald });
    url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await api?.app.close();
    await herald?.close();
  });

  it('stops exporting when the client aborts the download', async () => {
    const web = createWebClient(url);
    await web.signIn(viewer);
    const cookie = [...web.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    // A client that reads the first chunk and closes its socket, as a browser cancelling the download.
    const first = await new Promise<string>((resolve, reject) => {
      const request = get(`${url}/ui/deliveries/${deliveryId}/logs.csv`, { headers: { cookie }, agent: false });
      request.on('error', reject);
      request.on('response', (response) => {
        expect(response.statusCode).toBe(200);
        response.once('data', (chunk: Buffer) => {
          request.destroy();
          resolve(chunk.toString('utf8'));
        });
      });
    });
    expect(first.startsWith('id,email,domain')).toBe(true);
    // What the api role's shutdown waits for: resolves once the export has stopped.
    await api.whenIdle();
  });

  it('still exports every log, a page at a time, when the client reads to the end', async () => {
    const web = createWebClient(url);
    await web.signIn(viewer);
    const answer = await web.get(`/ui/deliveries/${deliveryId}/logs.csv`);
    expect(answer.status).toBe(200);
    const lines = answer.text.trimEnd().split('\n');
    expect(lines[0]).toBe('id,email,domain,status,attempts,reply,type,reason,category,mxHost,sentAt,updatedAt');
    expect(lines).toHaveLength(3_001);
    expect(new Set(lines.slice(1).map((line) => line.split(',')[1])).size).toBe(3_000);
  });
});
