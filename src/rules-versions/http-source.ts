import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../common/errors.ts';
import type { PackFile, SourceFiles } from './source.ts';
import type { RuleKind } from '../store/tables.ts';

// An HTTP source is a small JSON manifest naming the pack files (relative URLs on the same origin,
// optionally with their sha256). Only https, except on loopback (tests, a local mirror). Every
// request has a timeout and a size cap, and a redirect is followed only on the same origin: a rule
// pack decides how Herald sends, so it never comes from a host the operator did not name.

export interface FetchOptions {
  timeoutMs: number;
  maxFileBytes: number;
}

const manifestSchema = z
  .object({
    version: z.literal(1).optional(),
    mx: z
      .object({
        file: z.string().min(1).max(500),
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/i, 'expected 64 hex digits')
          .optional(),
      })
      .strict()
      .optional(),
    bounce: z
      .object({
        file: z.string().min(1).max(500),
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/i, 'expected 64 hex digits')
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const maxRedirects = 3;

export async function fetchManifestSource(source: string, options: FetchOptions): Promise<SourceFiles> {
  const base = checkUrl(source, 'deliverability.source');
  const manifestUrl = base.pathname.endsWith('.json')
    ? base
    : new URL('manifest.json', base.href.endsWith('/') ? base : new URL(`${base.href}/`));
  const manifestText = await fetchText(manifestUrl, options);
  let raw: unknown;
  try {
    raw = JSON.parse(manifestText);
  } catch (error) {
    throw new AppError('RULES_INVALID', `${manifestUrl.href}: not JSON (${(error as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues.map(
      (i) =>
        `${i.path.join('.') || '(root)'}: ${i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : i.message}`,
    );
    throw new AppError('RULES_INVALID', `${manifestUrl.href}: invalid manifest: ${first.join('; ')}`);
  }
  const files: PackFile[] = [];
  for (const kind of ['mx', 'bounce'] as const satisfies RuleKind[]) {
    const entry = parsed.data[kind];
    if (!entry) continue;
    const url = new URL(entry.file, manifestUrl);
    if (url.origin !== manifestUrl.origin)
      throw new AppError(
        'RULES_INVALID',
        `${manifestUrl.href}: ${kind}.file must be on ${manifestUrl.origin}, not ${url.origin}`,
      );
    const text = await fetchText(url, options);
    if (entry.sha256 && createHash('sha256').update(text, 'utf8').digest('hex') !== entry.sha256.toLowerCase()) {
      throw new AppError(
        'RULES_INVALID',
        `${url.href}: sha256 does not match the manifest (a partial or tampered download)`,
      );
    }
    files.push({ kind, name: url.href, text });
  }
  if (files.length === 0)
    throw new AppError('RULES_INVALID', `${manifestUrl.href}: the manifest names neither mx nor bounce`);
  return { source: manifestUrl.href, files };
}

export function checkUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AppError('CONFIG_INVALID', `${what}: "${value}" is not a URL`);
  }
  if (url.username || url.password)
    throw new AppError('CONFIG_INVALID', `${what}: credentials in the URL are not supported`);
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return url;
  throw new AppError(
    'CONFIG_INVALID',
    `${what}: only https:// URLs are accepted (plain http only on loopback), got ${url.protocol}//${url.host}`,
  );
}

function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    hostname === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

/** GET with a timeout (whole exchange), a size cap (streamed) and same-origin redirects only. */
export async function fetchText(start: URL, options: FetchOptions): Promise<string> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let url = start;
  try {
    for (let hop = 0; ; hop += 1) {
      const response = await fetch(url, {
        redirect: 'manual',
        signal,
        headers: { accept: 'application/json, application/yaml, text/yaml, text/plain, */*' },
      });
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel();
        const location = response.headers.get('location');
        const next = location ? new URL(location, url) : undefined;
        if (!next || next.origin !== start.origin)
          throw new AppError(
            'RULES_SOURCE_UNAVAILABLE',
            `${url.href}: redirect to ${next?.origin ?? 'nowhere'} refused (only the same origin is followed)`,
          );
        if (hop >= maxRedirects)
          throw new AppError('RULES_SOURCE_UNAVAILABLE', `${start.href}: more than ${maxRedirects} redirects`);
        url = next;
        continue;
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new AppError('RULES_SOURCE_UNAVAILABLE', `${url.href}: HTTP ${response.status}`);
      }
      return await readCapped(response, url, options.maxFileBytes);
    }
  } catch (error) {
    if (error instanceof AppError) throw error;
    const reason =
      (error as Error).name === 'TimeoutError'
        ? `no complete answer within ${options.timeoutMs} ms`
        : describeFetchError(error);
    throw new AppError('RULES_SOURCE_UNAVAILABLE', `${url.href}: ${reason}`, { cause: error });
  }
}

async function readCapped(response: Response, url: URL, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge(url, maxBytes);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel();
        throw tooLarge(url, maxBytes);
      }
      chunks.push(value);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(url: URL, maxBytes: number): AppError {
  return new AppError('INPUT_TOO_LARGE', `${url.href}: more than deliverability.maxFileBytes (${maxBytes} bytes)`);
}

function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ? `${cause.code} ${cause.message ?? ''}`.trim() : (error as Error).message;
}
