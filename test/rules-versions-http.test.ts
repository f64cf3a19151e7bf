import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBounceClassifier } from '../src/bounce/qualification-classifier.ts';
import { parseConfig } from '../src/config/load.ts';
import { checkUrl, fetchManifestSource } from '../src/rules-versions/http-source.ts';
import { readRuleSource } from '../src/rules-versions/source.ts';
import { updateRulePacks } from '../src/rules-versions/update.ts';
import { webhooksSchema } from '../src/webhooks/config-schema.ts';
import { createDestinationPolicy } from '../src/webhooks/destinations.ts';
import { loadRuleFiles, ruleFilesFor } from '../src/shaping/rule-loader.ts';
import { listVersions } from '../src/rules-versions/rule-version-store.ts';
import { describeEachDialect } from './support/databases.ts';

const mx = `rules:
  - name: example-isp
    mask: "*.mx.example-isp.test"
    maxConnections: 2
    maxMessagesPerHour: 500
`;
const bounce = `version: 'http-1'
rules:
  # 554 5.7.1 Service unavailable; client host blocked by example-isp list
  - id: example-isp-blocked
    category: blocked
    text: 'blocked by example-isp list'
`;
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

let server: Server;
let base: string;
const hits: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = request.url ?? '/';
    hits.push(path);
    const send = (status: number, body: string, headers: Record<string, string> = {}) => {
      response.writeHead(status, headers);
      response.end(body);
    };
    if (path === '/packs/manifest.json')
      return send(
        200,
        JSON.stringify({ version: 1, mx: { file: 'mx.yaml', sha256: sha(mx) }, bounce: { file: 'files/bounce.yaml' } }),
      );
    if (path === '/packs/mx.yaml') return send(200, mx);
    if (path === '/packs/files/bounce.yaml') return send(302, '', { location: '/packs/bounce-moved.yaml' });
    if (path === '/packs/bounce-moved.yaml') return send(200, bounce);
    if (path === '/bad-sha/manifest.json')
      return send(200, JSON.stringify({ mx: { file: '../packs/mx.yaml', sha256: sha('something else') } }));
    if (path === '/elsewhere/manifest.json')
      return send(302, '', {
        location: `http://127.0.0.2:${(server.address() as AddressInfo).port}/packs/manifest.json`,
      });
    if (path === '/other-origin/manifest.json')
      return send(200, JSON.stringify({ mx: { file: 'https://rules.example.net/mx.yaml' } }));
    if (path === '/big/manifest.json') return send(200, JSON.stringify({ mx: { file: 'mx.yaml' } }));
    if (path === '/big/mx.yaml') {
      // No content-length: the cap is enforced while streaming.
      response.writeHead(200, { 'transfer-encoding': 'chunked' });
      for (let i = 0; i < 64; i += 1) response.write(`# ${'x'.repeat(1_000)}\n`);
      return response.end();
    }
    if (path === '/unknown-key/manifest.json')
      return send(200, JSON.stringify({ mx: { file: 'mx.yaml' }, extra: true }));
    if (path === '/silent/manifest.json') return; // never answers: the timeout must end it
    // A source behind a token in the query string, as object stores and CDNs sign URLs.
    if (path === '/private/manifest.json?token=s3cret')
      return send(200, JSON.stringify({ mx: { file: 'mx.yaml?token=s3cret' } }));
    if (path === '/private/mx.yaml?token=s3cret') return send(200, mx);
    return send(404, 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const options = { timeoutMs: 5_000, maxFileBytes: 32 * 1024 };

describeEachDialect('deliverability update from an HTTP manifest', (context) => {
  it('loads the manifest and both files (same-origin redirect followed, sha256 checked) and applies them', async () => {
    const store = context.store();
    await store.db.deleteFrom('rule_versions').execute();
    const root = mkdtempSync(join(tmpdir(), 'herald-rules-http-'));
    const siteDir = join(root, 'mx');
    const bounceFile = join(root, 'bounce.yaml');
    const config = parseConfig(
      {
        shaping: { siteRulesDir: siteDir },
        bounce: { siteRulesFile: bounceFile },
        deliverability: { source: `${base}/packs/` },
      },
      'test',
    );

    const result = await updateRulePacks({ store, config, now: 1_000 });
    expect(result.source).toBe(`${base}/packs/manifest.json`);
    expect(result.kinds.map((k) => [k.kind, k.outcome])).toEqual([
      ['bounce', 'updated'],
      ['mx', 'updated'],
    ]);
    const versions = await listVersions(store);
    expect(versions.map((v) => [v.kind, v.source])).toEqual([
      ['bounce', `${base}/packs/files/bounce.yaml`],
      ['mx', `${base}/packs/mx.yaml`],
    ]);
    expect(hits).toContain('/packs/bounce-moved.yaml');

    const rules = await loadRuleFiles(ruleFilesFor({ siteRulesDir: siteDir }));
    expect(rules.ok && rules.rules.match('a.mx.example-isp.test', 0).name).toBe('example-isp');
    expect(
      (await buildBounceClassifier(bounceFile)).classifyReply({
        code: 554,
        enhanced: '5.7.1',
        text: 'Service unavailable; client host blocked by example-isp list',
        phase: 'connect',
        mxHost: 'a.mx.example-isp.test',
      }).ruleId,
    ).toBe('example-isp-blocked');

    const again = await updateRulePacks({ store, config, now: 2_000 });
    expect(again.kinds.map((k) => k.outcome)).toEqual(['unchanged', 'unchanged']);
  });
});

describe('HTTP rule source limits', () => {
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => error as { code: string; message: string },
    );

  it('accepts https, and plain http only on loopback', () => {
    expect(checkUrl('https://rules.example.net/herald/', 'source').host).toBe('rules.example.net');
    expect(checkUrl('http://[::1]:8080/x', 'source').port).toBe('8080');
    expect(() => checkUrl('http://rules.example.net/herald/', 'source')).toThrow(/only https:\/\/ URLs/);
    expect(() => checkUrl('https://user:pw@rules.example.net/', 'source')).toThrow(/credentials/);
    // Not a URL (the port): quoted whole before, password and token included, into the workflow's
    // step error (stored, shown by `herald workflows logs` and the doctor).
    expect(() => checkUrl('https://user:hunter2@rules.example.net:99999/?token=s3cret', 'source')).toThrow(
      'source: "https://***@rules.example.net:99999/?token=***" is not a URL',
    );
  });

  it('keeps a token in the source URL out of errors, versions and file names', async () => {
    // Before: the whole URL, token included, was stored as the version's source and shown in errors.
    const read = await fetchManifestSource(`${base}/private/manifest.json?token=s3cret`, options);
    expect(read.source).toBe(`${base}/private/manifest.json?token=***`);
    expect(read.files.map((file) => file.name)).toEqual([`${base}/private/mx.yaml?token=***`]);
    const error = await failure(fetchManifestSource(`${base}/private/manifest.json?token=expired`, options));
    expect(error?.message).toBe(`${base}/private/manifest.json?token=***: HTTP 404`);
    const scheme = await failure(readRuleSource('ftp://rules.example/?token=s3cret', options));
    expect(scheme?.message).toContain('"ftp://rules.example/?token=***" is neither a directory');
  });

  it('refuses a redirect to another host', async () => {
    const error = await failure(fetchManifestSource(`${base}/elsewhere/manifest.json`, options));
    expect(error).toMatchObject({
      code: 'RULES_SOURCE_UNAVAILABLE',
      message: expect.stringMatching(/redirect to http:\/\/127\.0\.0\.2:\d+ refused/),
    });
  });

  it('refuses pack files on another origin, a sha256 mismatch, unknown manifest keys and HTTP errors', async () => {
    expect(await failure(fetchManifestSource(`${base}/other-origin/manifest.json`, options))).toMatchObject({
      code: 'RULES_INVALID',
      message: expect.stringMatching(/mx\.file must be on http:\/\/127\.0\.0\.1/),
    });
    expect(await failure(fetchManifestSource(`${base}/bad-sha/manifest.json`, options))).toMatchObject({
      code: 'RULES_INVALID',
      message: expect.stringMatching(/sha256 does not match/),
    });
    expect(await failure(fetchManifestSource(`${base}/unknown-key/manifest.json`, options))).toMatchObject({
      code: 'RULES_INVALID',
      message: expect.stringMatching(/unknown key\(s\) extra/),
    });
    expect(await failure(fetchManifestSource(`${base}/missing/`, options))).toMatchObject({
      code: 'RULES_SOURCE_UNAVAILABLE',
      message: expect.stringMatching(/missing\/manifest\.json: HTTP 404/),
    });
  });

  it('fetches a source named by an API client only where the webhooks may connect', async () => {
    const denied = { policy: createDestinationPolicy(webhooksSchema.parse({})) };
    // Before: loopback, the cloud metadata address and the server's directories were all read, and
    // the start of an answer that was not JSON came back in the error.
    expect(
      await failure(fetchManifestSource(`${base}/packs/manifest.json`, { ...options, destinations: denied })),
    ).toMatchObject({
      code: 'RULES_SOURCE_UNAVAILABLE',
      message: expect.stringContaining('destination refused: 127.0.0.1 is in webhooks.deniedNetworks (127.0.0.0/8)'),
    });
    const metadata = { ...denied, resolve: async () => [{ address: '169.254.169.254', family: 4 }] };
    expect(
      await failure(fetchManifestSource('https://rules.example/manifest.json', { ...options, destinations: metadata })),
    ).toMatchObject({
      code: 'RULES_SOURCE_UNAVAILABLE',
      message: expect.stringContaining(
        'destination refused: rules.example resolves only to refused addresses: 169.254.169.254 is in webhooks.deniedNetworks',
      ),
    });
    expect(await failure(readRuleSource('/etc', { ...options, destinations: denied }))).toMatchObject({
      code: 'INPUT_INVALID',
      message: expect.stringContaining('source: "/etc" is not an http(s) URL'),
    });
    // Allowed, through a name resolved by the seam: connected to the address checked.
    const allowed = {
      policy: createDestinationPolicy(webhooksSchema.parse({ allowedNetworks: ['127.0.0.1/32'] })),
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
    };
    const port = (server.address() as AddressInfo).port;
    const read = await fetchManifestSource(`http://localhost:${port}/packs/manifest.json`, {
      ...options,
      destinations: allowed,
    });
    expect(read.files.map((file) => file.kind)).toEqual(['mx', 'bounce']);
  });

  it('stops reading a file past the size cap, and a silent server at the timeout', async () => {
    expect(await failure(fetchManifestSource(`${base}/big/manifest.json`, options))).toMatchObject({
      code: 'INPUT_TOO_LARGE',
      message: expect.stringMatching(/big\/mx\.yaml: more than deliverability\.maxFileBytes \(32768 bytes\)/),
    });
    expect(
      await failure(fetchManifestSource(`${base}/silent/manifest.json`, { ...options, timeoutMs: 150 })),
    ).toMatchObject({
      code: 'RULES_SOURCE_UNAVAILABLE',
      message: expect.stringMatching(/no complete answer within 150 ms/),
    });
  });
});
