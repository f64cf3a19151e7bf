import { createHash } from 'node:crypto';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { z } from 'zod';
import { AppError } from '../common/errors.ts';
import { maskUrl, secretParameterNames } from '../common/mask-url.ts';
import {
  createCheckedLookup,
  type DestinationPolicy,
  literalAddress,
  type ResolveHost,
} from '../webhooks/destinations.ts';
import type { PackFile, SourceFiles } from './source.ts';
import type { RuleKind } from '../store/tables.ts';

// An HTTP source is a small JSON manifest naming the pack files (relative URLs on the same origin,
// optionally with their sha256). Only https, except on loopback (tests, a local mirror). Every
// request has a timeout and a size cap, and a redirect is followed only on the same origin: a rule
// pack decides how Herald sends, so it never comes from a host the operator did not name. A URL is
// shown (errors, the versions' source, file names) with its credential parameters masked.

export interface FetchOptions {
  timeoutMs: number;
  maxFileBytes: number;
  /**
   * A source named by an API client, not by the operator: connect only where this allows (the
   * webhooks' networks), checked on the address connected to.
   */
  destinations?: { policy: DestinationPolicy; resolve?: ResolveHost | undefined } | undefined;
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
    throw new AppError('RULES_INVALID', `${shown(manifestUrl)}: not JSON (${(error as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues.map(
      (i) =>
        `${i.path.join('.') || '(root)'}: ${i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : i.message}`,
    );
    throw new AppError('RULES_INVALID', `${shown(manifestUrl)}: invalid manifest: ${first.join('; ')}`);
  }
  const files: PackFile[] = [];
  for (const kind of ['mx', 'bounce'] as const satisfies RuleKind[]) {
    const entry = parsed.data[kind];
    if (!entry) continue;
    const url = new URL(entry.file, manifestUrl);
    if (url.origin !== manifestUrl.origin)
      throw new AppError(
        'RULES_INVALID',
        `${shown(manifestUrl)}: ${kind}.file must be on ${manifestUrl.origin}, not ${url.origin}`,
      );
    const text = await fetchText(url, options);
    if (entry.sha256 && createHash('sha256').update(text, 'utf8').digest('hex') !== entry.sha256.toLowerCase()) {
      throw new AppError(
        'RULES_INVALID',
        `${shown(url)}: sha256 does not match the manifest (a partial or tampered download)`,
      );
    }
    files.push({ kind, name: shown(url), text });
  }
  if (files.length === 0)
    throw new AppError('RULES_INVALID', `${shown(manifestUrl)}: the manifest names neither mx nor bounce`);
  return { source: shown(manifestUrl), files };
}

export function checkUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AppError('CONFIG_INVALID', `${what}: "${quoteNotUrl(value)}" is not a URL`);
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

/**
 * A source that does not parse as a URL, as an error quotes it: maskUrl cannot mask what it cannot
 * parse, and `https://user:pw@host:99999/?token=…` went whole into the workflow's stored step error.
 */
function quoteNotUrl(value: string): string {
  return value
    .slice(0, 200)
    .replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1***@')
    .replace(/([?&]([^=&#]*)=)[^&#]*/g, (all, prefix: string, name: string) =>
      secretParameterNames.test(name) ? `${prefix}***` : all,
    );
}

/** The URL as errors and stored versions show it: a `?token=` the source requires stays out of logs. */
function shown(url: URL): string {
  return maskUrl(url.href);
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
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const lookup = options.destinations
    ? createCheckedLookup(options.destinations.policy, options.destinations.resolve)
    : undefined;
  let url = start;
  try {
    for (let hop = 0; ; hop += 1) {
      const literal = options.destinations ? literalAddress(url) : undefined;
      const refused = literal === undefined ? undefined : options.destinations?.policy.refusal(literal);
      if (refused) throw new AppError('RULES_SOURCE_UNAVAILABLE', `${shown(url)}: destination refused: ${refused}`);
      const response = await get(url, deadline, lookup);
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        response.destroy();
        const location = response.headers.location;
        const next = location ? new URL(location, url) : undefined;
        if (!next || next.origin !== start.origin)
          throw new AppError(
            'RULES_SOURCE_UNAVAILABLE',
            `${shown(url)}: redirect to ${next?.origin ?? 'nowhere'} refused (only the same origin is followed)`,
          );
        if (hop >= maxRedirects)
          throw new AppError('RULES_SOURCE_UNAVAILABLE', `${shown(start)}: more than ${maxRedirects} redirects`);
        url = next;
        continue;
      }
      if (status !== 200) {
        response.destroy();
        throw new AppError('RULES_SOURCE_UNAVAILABLE', `${shown(url)}: HTTP ${status}`);
      }
      return await readCapped(response, url, options.maxFileBytes);
    }
  } catch (error) {
    if (error instanceof AppError) throw error;
    const reason = deadline.aborted ? `no complete answer within ${options.timeoutMs} ms` : describeFetchError(error);
    throw new AppError('RULES_SOURCE_UNAVAILABLE', `${shown(url)}: ${reason}`, { cause: error });
  }
}

function get(url: URL, signal: AbortSignal, lookup: LookupFunction | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      {
        signal,
        agent: false,
        headers: { accept: 'application/json, application/yaml, text/yaml, text/plain, */*' },
        ...(lookup && { lookup }),
      },
      resolve,
    );
    request.on('error', reject);
    request.end();
  });
}

async function readCapped(response: IncomingMessage, url: URL, maxBytes: number): Promise<string> {
  if (Number(response.headers['content-length'] ?? '0') > maxBytes) {
    response.destroy();
    throw tooLarge(url, maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      response.destroy();
      throw tooLarge(url, maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(url: URL, maxBytes: number): AppError {
  return new AppError('INPUT_TOO_LARGE', `${shown(url)}: more than deliverability.maxFileBytes (${maxBytes} bytes)`);
}

function describeFetchError(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === 'DESTINATION_DENIED') return `destination refused: ${message}`;
  return code && !message.includes(code) ? `${code} ${message}` : message;
}
