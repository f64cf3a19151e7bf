import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAddressValidator, validateAddress } from '../src/audience/address.ts';
import { decideRow, readHeader } from '../src/audience/csv-rows.ts';
import { classifyBounce } from '../src/bounce/classify-bounce.ts';
import { decideRecipient } from '../src/bounce/inbound-policy.ts';
import { parseBounceMessage } from '../src/bounce/parse-bounce.ts';
import { buildBounceClassifier } from '../src/bounce/qualification-classifier.ts';
import { createVerpSigner } from '../src/bounce/verp.ts';
import { decodePart, encodePart } from '../src/midsourcing/part-codec.ts';
import { createNonceCache, signRequest, verifyRequest, verifyRequestHead } from '../src/midsourcing/signing.ts';
import { createKeyRing, type TokenClaims } from '../src/tracking/token.ts';
import { bounceCorpusDir } from './support/corpus.ts';

// Seeded, bounded fuzzing of what Herald reads from strangers: tracking tokens, bounce mails, CSV
// rows and mid-sourcing requests. A fixed seed makes every run check the same inputs (a failure
// prints the seed and the shrunk counterexample); the counts keep the file well under a minute.
// Each property states what must hold for *any* input, not only "does not throw".

const seed = 20261205;
const runs = (numRuns: number) => ({ seed, numRuns, endOnFailure: true });

describe('fuzz: tracking tokens', () => {
  const day = 86_400_000;
  const now = Date.UTC(2026, 5, 1);
  const ring = createKeyRing({
    keys: [
      { id: 'old', secret: 'old-fuzz-secret-0123456789', createdAt: now - 100 * day },
      { id: 'k2', secret: 'new-fuzz-secret-0123456789', createdAt: now - day },
    ],
    graceMs: 30 * day,
    ttlMs: 365 * day,
  });
  const claims = fc.record({
    kind: fc.constantFrom('click', 'open', 'mirror', 'unsubscribe'),
    deliveryId: fc.integer({ min: 1, max: 2 ** 31 }),
    logId: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    linkIndex: fc.integer({ min: 0, max: 10_000 }),
    occurrence: fc.integer({ min: 0, max: 1_000 }),
    issuedAt: fc.integer({ min: Math.floor((now - 300 * day) / 1000), max: Math.floor(now / 1000) }),
  });
  const normalize = (c: TokenClaims & { linkIndex: number; occurrence: number }): TokenClaims =>
    c.kind === 'click' ? c : { kind: c.kind, deliveryId: c.deliveryId, logId: c.logId, issuedAt: c.issuedAt };

  it('3,000 signed tokens verify to their claims', () => {
    fc.assert(
      fc.property(claims, (c) => {
        const expected = normalize(c as TokenClaims & { linkIndex: number; occurrence: number });
        const result = ring.verify(ring.sign(expected), now);
        expect(result).toMatchObject({ ok: true, claims: expected });
      }),
      runs(3_000),
    );
  });

  it('3,000 tampered tokens never verify to other claims', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    fc.assert(
      fc.property(
        claims,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 63 })), { minLength: 1, maxLength: 4 }),
        fc.constantFrom('flip', 'truncate', 'extend'),
        (c, edits, how) => {
          const expected = normalize(c as TokenClaims & { linkIndex: number; occurrence: number });
          const token = ring.sign(expected);
          let tampered = token;
          if (how === 'truncate') tampered = token.slice(0, edits[0]![0] % token.length);
          else if (how === 'extend') tampered = token + edits.map(([, ch]) => alphabet[ch]).join('');
          else
            for (const [at, ch] of edits) {
              const i = at % tampered.length;
              tampered = tampered.slice(0, i) + alphabet[ch] + tampered.slice(i + 1);
            }
          const result = ring.verify(tampered, now);
          // Only the untouched token (an edit may put back the same character) verifies.
          if (result.ok) expect(tampered).toBe(token);
        },
      ),
      runs(3_000),
    );
  });

  it('3,000 arbitrary strings never verify and never throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.base64String({ maxLength: 200 })), (text) => {
        expect(ring.verify(text.replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, ''), now).ok).toBe(false);
      }),
      runs(3_000),
    );
  });
});

describe('fuzz: bounce mails', async () => {
  const files = readdirSync(bounceCorpusDir)
    .filter((f) => f.endsWith('.eml'))
    .sort();
  const corpus = files.map((f) => readFileSync(join(bounceCorpusDir, f)));
  const classifier = await buildBounceClassifier('/nonexistent/site.yaml');
  const kinds = new Set(['dsn', 'arf', 'auto_reply', 'not_bounce', 'unparseable']);

  it('2,000 mangled corpus bounces: parsed or refused as values, never a throw', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: corpus.length - 1 }),
        fc.array(
          fc.record({
            at: fc.nat(),
            op: fc.constantFrom('flip', 'cut', 'dup', 'insert'),
            text: fc.constantFrom(
              '\r\n',
              '--',
              'Content-Type: multipart/mixed; boundary="x"\r\n',
              'Final-Recipient: rfc822; \r\n',
              '=?utf-8?B?',
              '\u0000',
              '\xff\xfe',
              '\r\n\r\n--x--\r\n',
              'Status: 9.9.9\r\n',
            ),
          }),
          { maxLength: 6 },
        ),
        async (index, edits) => {
          let raw = Buffer.from(corpus[index]!);
          for (const edit of edits) {
            const at = raw.length === 0 ? 0 : edit.at % raw.length;
            if (edit.op === 'flip') raw[at] = raw[at]! ^ 0x5a;
            else if (edit.op === 'cut') raw = raw.subarray(0, at);
            else if (edit.op === 'dup')
              raw = Buffer.concat([raw.subarray(0, at), raw.subarray(at, at + 200), raw.subarray(at)]);
            else raw = Buffer.concat([raw.subarray(0, at), Buffer.from(edit.text, 'latin1'), raw.subarray(at)]);
          }
          const parsed = await parseBounceMessage(raw);
          expect(kinds.has(parsed.kind)).toBe(true);
          for (const verdict of classifyBounce(parsed, classifier)) {
            expect(['hard', 'soft', 'ignored']).toContain(verdict.verdict.type);
            expect(typeof verdict.recipient.recipient).toBe('string');
          }
        },
      ),
      runs(2_000),
    );
  }, 60_000);

  it('3,000 RCPT addresses: only signed VERP, role and feedback addresses of our domain pass', () => {
    const signer = createVerpSigner({ keys: [{ id: 'k', secret: 'fuzz-verp-secret-0123', createdAt: 0 }], graceMs: 0 });
    const policy = { bounceDomain: 'b.test', verpPrefix: 'bounce', verp: signer, feedbackAddress: 'fbl@b.test' };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.emailAddress(),
          fc.integer({ min: 1, max: 1e9 }).map((id) => signer.address(id, 'b.test')),
          fc
            .tuple(
              fc.integer({ min: 1, max: 1e9 }),
              fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 20, maxLength: 20 }),
            )
            .map(([id, mac]) => `bounce+${id}-${mac}@b.test`),
          fc.integer({ min: 1, max: 1e9 }).map((id) => `bounce+${id}@b.test`),
        ),
        (address) => {
          const decision = decideRecipient(address, policy, 0);
          if (!decision.ok) return;
          const lower = address.trim().toLowerCase();
          if (decision.logId !== null) expect(lower).toBe(signer.address(Number(decision.logId), 'b.test'));
          else expect(['fbl@b.test', 'postmaster@b.test', 'abuse@b.test']).toContain(lower);
        },
      ),
      runs(3_000),
    );
  });
});

describe('fuzz: CSV rows', () => {
  const validate = createAddressValidator();
  const field = fc.oneof(
    fc.string({ maxLength: 30 }),
    fc.emailAddress(),
    fc.constantFrom(
      '"',
      '""',
      ',',
      '\r\n',
      '\n',
      '\r',
      '\u00e9',
      '\uE000',
      '{{ x }}',
      '<b>',
      ' a@b.test ',
      'Bob <b@x.test>',
    ),
  );

  it('3,000 random files: each record accepted with a valid address and exact data, or rejected with a reason', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 12 }), { minLength: 0, maxLength: 4 }),
        fc.array(fc.array(field, { minLength: 1, maxLength: 6 }), { maxLength: 8 }),
        (otherColumns, rows) => {
          const columns = ['email', ...otherColumns.map((c, i) => `c${i}_${c.replace(/[",\r\n]/g, '')}`)];
          const quote = (value: string) => `"${value.replace(/"/g, '""')}"`;
          const text = [columns.map(quote).join(','), ...rows.map((r) => r.map(quote).join(','))].join('\r\n');
          const records = parseCsv(text, {
            bom: true,
            relax_column_count: true,
            record_delimiter: ['\r\n', '\n', '\r'],
          }) as string[][];
          const header = readHeader(records[0]!, 'fuzz.csv');
          for (const record of records.slice(1)) {
            const decision = decideRow(record, header, validate);
            if (decision.kind === 'rejected') {
              expect(decision.reason.length).toBeGreaterThan(0);
              expect(decision.excerpt).not.toMatch(/[\r\n]/);
              continue;
            }
            expect(record.length).toBe(columns.length);
            const again = validateAddress(decision.email);
            expect(again).toMatchObject({ ok: true, email: decision.email, domain: decision.domain });
            const data = JSON.parse(decision.data) as Record<string, string>;
            expect(Object.keys(data)).toEqual(header.columns.slice(1));
            expect(Object.values(data)).toEqual(record.slice(1));
          }
        },
      ),
      runs(3_000),
    );
  });
});

describe('fuzz: mid-sourcing requests', () => {
  const secret = 'fuzz-mid-secret-0123456789';
  const now = Date.UTC(2026, 5, 1);
  const path = '/mid/v1/deliveries/7/parts/1';

  it('2,000 random parts: accepted only when every line is a valid recipient; a refusal names its line', async () => {
    const line = fc.oneof(
      fc
        .record({
          id: fc.integer({ min: 1, max: 1e9 }),
          email: fc.emailAddress(),
          data: fc.constantFrom('{}', '{"a":"b"}', '[]', '"x"', 'null', '{', '{"k":1}'),
        })
        .map(({ id, email, data }) =>
          JSON.stringify({ id, email, domain: email.slice(email.lastIndexOf('@') + 1).toLowerCase(), data }),
        ),
      fc
        .record({
          id: fc.oneof(fc.integer(), fc.string({ maxLength: 5 })),
          email: fc.oneof(fc.string({ maxLength: 20 }), fc.emailAddress()),
          domain: fc.oneof(fc.domain(), fc.string({ maxLength: 10 })),
          data: fc.oneof(fc.json(), fc.string({ maxLength: 10 })),
        })
        .map((value) => JSON.stringify(value)),
      fc.string({ maxLength: 60 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.boolean(), async (lines, gzipped) => {
        const raw = Buffer.from(lines.join('\n'));
        const decoded = await decodePart(1, gzipped ? gzipSync(raw) : raw, gzipped, 64 * 1024);
        if (!decoded.ok) {
          expect(decoded.code).toBe('INVALID_BODY');
          expect(decoded.message).toMatch(/^part 1, line \d+: /);
          return;
        }
        for (const recipient of decoded.lines) {
          const check = validateAddress(recipient.email);
          expect(check.ok).toBe(true);
          if (check.ok) expect(recipient.domain).toBe(check.domain);
          const data = JSON.parse(recipient.data) as unknown;
          expect(typeof data === 'object' && data !== null && !Array.isArray(data)).toBe(true);
        }
        // What a marketing side encodes from accepted lines decodes to the same lines.
        const encoded = await encodePart(1, decoded.lines);
        const round = await decodePart(1, encoded.body, true, 64 * 1024);
        expect(round).toMatchObject({ ok: true, lines: decoded.lines });
      }),
      runs(2_000),
    );
  });

  it('3,000 random request heads and bodies: authenticated only when signed with the secret', () => {
    const header = fc.option(fc.string({ maxLength: 70 }), { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({
          peer: fc.option(fc.constantFrom('marketing-1', 'stranger', ''), { nil: undefined }),
          timestamp: fc.option(fc.oneof(fc.constant(String(now)), fc.string({ maxLength: 16 })), { nil: undefined }),
          nonce: header,
          signature: header,
          headSignature: header,
          contentLength: fc.option(fc.oneof(fc.nat().map(String), fc.string({ maxLength: 8 })), { nil: undefined }),
        }),
        fc.uint8Array({ maxLength: 64 }),
        fc.boolean(),
        (h, body, signedForReal) => {
          const headers: Record<string, string | undefined> = signedForReal
            ? {
                ...(signRequest({
                  peer: 'marketing-1',
                  secret,
                  method: 'POST',
                  path,
                  body,
                  now,
                  nonce: 'AAAAAAAAAAAAAAAAAAAAAA',
                }) as unknown as Record<string, string>),
                'content-length': String(body.length),
              }
            : {
                'x-herald-peer': h.peer,
                'x-herald-timestamp': h.timestamp,
                'x-herald-nonce': h.nonce,
                'x-herald-signature': h.signature,
                'x-herald-head-signature': h.headSignature,
                'content-length': h.contentLength,
              };
          const secretOf = (peer: string) => (peer === 'marketing-1' ? secret : undefined);
          const head = verifyRequestHead({
            method: 'POST',
            path,
            headers,
            now,
            windowMs: 300_000,
            maxBodyBytes: 1_000,
            secretOf,
          });
          const full = verifyRequest({
            method: 'POST',
            path,
            headers,
            body,
            now,
            windowMs: 300_000,
            secretOf,
            nonces: createNonceCache(),
          });
          expect(head.ok).toBe(signedForReal);
          expect(full.ok).toBe(signedForReal);
          if (!head.ok && h.peer === 'stranger' && !signedForReal)
            expect(head.code === 'BAD_SIGNATURE' || head.code === 'INVALID_BODY').toBe(true);
        },
      ),
      runs(3_000),
    );
  });
});
