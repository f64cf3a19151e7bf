import { fileURLToPath } from 'node:url';
import { describeSlowPattern, slowPatterns } from '../bounce/pattern-timing.ts';
import { tooDeepLine, tooDeepMessage } from '../common/yaml-depth.ts';
import { documentToJs } from '../common/yaml-source.ts';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { checkMask } from './mask.ts';
import { parsePublicIds, type PublicIdRange } from './public-ids.ts';

// An MX rule pack is a YAML file of ordered rules matched on the MX host name, plus backoff rules
// matched on SMTP replies. Validation is strict (unknown keys are errors) and every problem is
// reported as `file:line: path: message` so an operator can jump straight to it.

export type BackoffLimit = 'rate' | 'connections';

export type TlsMode = 'default' | 'disabled' | 'opportunistic' | 'required';

export interface SourcePosition {
  file: string;
  line: number;
}

export interface MxRule {
  name: string;
  masks: string[];
  /** Empty = every public id. */
  publicIds: PublicIdRange[];
  /** true: limits are shared by every source IP the rule selects; false: each public id has its own. */
  shared: boolean;
  /** true: each MX host matching the mask has its own quota (the generic rule); false: the rule's hosts share one. */
  perMxHost: boolean;
  /** Per path (source IP × MX IP), or per MX IP across sources when shared. */
  maxConnections: number;
  maxMessagesPerHour: number;
  maxMessagesPerConnection: number;
  /** Tokens that may be spent at once; default derived from the hourly rate (see throttle.ts). */
  burst?: number;
  timeouts: { connectMs?: number; commandMs?: number; dataMs?: number };
  tls: TlsMode;
  source: SourcePosition;
}

export interface BackoffRule {
  name: string;
  /** Case-insensitive regular expression tested against `<code> <enhanced status> <text>`. */
  reply: string;
  /** Multiplier applied to the hourly rate while the backoff is in force (0.5 halves it). */
  factor: number;
  durationMs: number;
  /** Matching replies needed within windowMs to trigger. */
  threshold: number;
  windowMs: number;
  /** Which limits the factor applies to: the hourly rate, the connections per path, or both. */
  limits: BackoffLimit[];
  source: SourcePosition;
}

export interface RulePack {
  file: string;
  rules: MxRule[];
  backoff: BackoffRule[];
}

export interface PackIssue {
  file: string;
  line: number;
  path: string;
  message: string;
}

export type PackResult = { ok: true; pack: RulePack } | { ok: false; issues: PackIssue[] };

export const maxPackBytes = 1024 * 1024;
const maxRules = 2_000;
// Masks that are not `*` + a suffix are tested one by one on each MX host met for the first time
// (compiled-rules.ts): 90,000 of them, which 1 MiB holds, cost ~4 ms of event loop per new host.
const maxMasks = 10_000;

const positiveInteger = (max: number) =>
  z
    .number({ invalid_type_error: 'expected a positive integer', required_error: 'is required' })
    .int('expected a positive integer')
    .positive('expected a positive integer')
    .max(max, `expected at most ${max}`);

// Timeouts become Node timers, which hold at most 2^31 - 1 ms (24.8 days) and run a longer one after
// 1 ms: `data: 3600000` (milliseconds, as in mta.dataTimeoutMs, read as seconds) failed every DATA.
const maxDurationMs = 24 * 3_600_000;

const duration = z.union([z.number(), z.string()]).superRefine((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined || ms > maxDurationMs)
    ctx.addIssue({
      code: 'custom',
      message: 'expected a duration: seconds, or a number with ms, s, m or h (e.g. "30s"), at most 24h',
    });
});

const name = z
  .string({ required_error: 'is required' })
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, 'expected a name of letters, digits, ".", "_" or "-" (at most 64)');

const mask = z.string().superRefine((value, ctx) => {
  const problem = checkMask(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const publicIds = z
  .union([z.number(), z.string(), z.array(z.union([z.number(), z.string()]))])
  .superRefine((value, ctx) => {
    const parsed = parsePublicIds(value);
    if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
  });

const ruleSchema = z
  .object({
    name,
    mask: z.union([mask, z.array(mask).min(1, 'expected at least one mask')]),
    publicIds: publicIds.optional(),
    shared: z.boolean({ invalid_type_error: 'expected true or false' }).default(false),
    perMxHost: z.boolean({ invalid_type_error: 'expected true or false' }).default(false),
    maxConnections: positiveInteger(10_000),
    maxMessagesPerHour: positiveInteger(100_000_000),
    maxMessagesPerConnection: positiveInteger(1_000_000).default(100),
    burst: positiveInteger(1_000_000).optional(),
    timeouts: z
      .object({ connect: duration.optional(), command: duration.optional(), data: duration.optional() })
      .strict()
      .default({}),
    tls: z.enum(['default', 'disabled', 'opportunistic', 'required']).default('default'),
  })
  .strict();

const backoffSchema = z
  .object({
    name,
    reply: z
      .string()
      .max(500, 'expected at most 500 characters')
      .superRefine((value, ctx) => {
        try {
          new RegExp(value, 'i');
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(error as Error).message}` });
        }
      }),
    factor: z
      .number({ invalid_type_error: 'expected a number between 0 and 1' })
      .gt(0, 'expected a number between 0 and 1')
      .lt(1, 'expected a number between 0 and 1'),
    duration,
    threshold: positiveInteger(1_000_000).default(1),
    window: duration.default('10m'),
    limits: z
      .array(z.enum(['rate', 'connections']))
      .min(1, 'expected rate, connections or both')
      .default(['rate']),
  })
  .strict();

const packSchema = z
  .object({
    version: z.literal(1, { errorMap: () => ({ message: 'expected 1 (the only pack format so far)' }) }).optional(),
    rules: z.array(ruleSchema).max(maxRules, `expected at most ${maxRules} rules`).default([]),
    backoff: z.array(backoffSchema).max(maxRules).default([]),
  })
  .strict();

/** Parses and validates one pack. `file` is only used in messages and positions. */
export async function parseRulePack(text: string, file: string): Promise<PackResult> {
  if (Buffer.byteLength(text, 'utf8') > maxPackBytes)
    return fail(file, 1, '(file)', `a rule pack is at most ${maxPackBytes} bytes`);
  const deep = tooDeepLine(text);
  if (deep !== undefined) return fail(file, deep, '(yaml)', tooDeepMessage);
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (document.errors.length > 0) {
    return {
      ok: false,
      issues: document.errors.map((error) => ({
        file,
        line: lineCounter.linePos(error.pos[0]).line,
        path: '(yaml)',
        message: error.message.split('\n')[0]!,
      })),
    };
  }
  const js = documentToJs(document, lineCounter);
  if (!js.ok) return fail(file, js.line, '(yaml)', js.message);
  const raw = js.value ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    return fail(file, 1, '(root)', 'expected a mapping with a `rules` list');
  const parsed = packSchema.safeParse(raw);
  const lineOf = (path: Array<string | number>) => lineOfPath(document, lineCounter, path);
  const issues: PackIssue[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys)
          issues.push({
            file,
            line: lineOf([...issue.path, key]),
            path: formatPath([...issue.path, key]),
            message: 'unknown key',
          });
      } else {
        issues.push({ file, line: lineOf(issue.path), path: formatPath(issue.path), message: issue.message });
      }
    }
    return { ok: false, issues: sortIssues(issues) };
  }
  const pack: RulePack = {
    file,
    rules: parsed.data.rules.map((rule, index) => ({
      name: rule.name,
      masks: Array.isArray(rule.mask) ? rule.mask : [rule.mask],
      publicIds: (parsePublicIds(rule.publicIds) as { ranges: PublicIdRange[] }).ranges,
      shared: rule.shared,
      perMxHost: rule.perMxHost,
      maxConnections: rule.maxConnections,
      maxMessagesPerHour: rule.maxMessagesPerHour,
      maxMessagesPerConnection: rule.maxMessagesPerConnection,
      ...(rule.burst === undefined ? {} : { burst: rule.burst }),
      timeouts: {
        ...(rule.timeouts.connect === undefined ? {} : { connectMs: parseDuration(rule.timeouts.connect)! }),
        ...(rule.timeouts.command === undefined ? {} : { commandMs: parseDuration(rule.timeouts.command)! }),
        ...(rule.timeouts.data === undefined ? {} : { dataMs: parseDuration(rule.timeouts.data)! }),
      },
      tls: rule.tls,
      source: { file, line: lineOf(['rules', index]) },
    })),
    backoff: parsed.data.backoff.map((rule, index) => ({
      name: rule.name,
      reply: rule.reply,
      factor: rule.factor,
      durationMs: parseDuration(rule.duration)!,
      threshold: rule.threshold,
      windowMs: parseDuration(rule.window)!,
      limits: [...new Set(rule.limits)],
      source: { file, line: lineOf(['backoff', index]) },
    })),
  };
  // A burst goes out at once after a quiet spell: one larger than the hour's quota sends more than
  // the hour's quota in an instant (100/h with burst 100000).
  pack.rules.forEach((rule, index) => {
    if (rule.burst !== undefined && rule.burst > rule.maxMessagesPerHour)
      issues.push({
        file,
        line: lineOf(['rules', index, 'burst']),
        path: formatPath(['rules', index, 'burst']),
        message: `expected at most maxMessagesPerHour (${rule.maxMessagesPerHour}): a burst goes out at once`,
      });
  });
  issues.push(...checkPackConsistency(pack));
  // Backoff patterns run over every non-2xx reply, text the remote server writes: one that backtracks
  // catastrophically blocks the MTA (src/bounce/pattern-timing.ts). The shipped pack is trusted.
  if (issues.length === 0 && file !== shippedMxPack) {
    const slow = new Map((await slowPatterns(pack.backoff.map((rule) => rule.reply))).map((s) => [s.pattern, s]));
    pack.backoff.forEach((rule, index) => {
      const found = slow.get(rule.reply);
      if (found)
        issues.push({
          file,
          line: rule.source.line,
          path: formatPath(['backoff', index, 'reply']),
          message: describeSlowPattern(found),
        });
    });
  }
  return issues.length > 0 ? { ok: false, issues: sortIssues(issues) } : { ok: true, pack };
}

const shippedMxPack = fileURLToPath(new URL('../../rules/mx/default.yaml', import.meta.url));

/** True for the catch-all rule: mask `*` and every public id. */
export function isGenericRule(rule: Pick<MxRule, 'masks' | 'publicIds'>): boolean {
  return rule.publicIds.length === 0 && rule.masks.some((m) => /^\*+$/.test(withoutRootDot(m)));
}

// Masks are matched without the trailing root dot (mask.ts): "*." is "*", and "*?." is "*?".
function withoutRootDot(mask: string): string {
  return mask.endsWith('.') ? mask.slice(0, -1) : mask;
}

/**
 * True for a rule that matches every MX host like the generic one without being it: a mask of
 * wildcards only (`*?`, `?*`, `??*`) matches any host name longer than its `?`s, and the rules after
 * it, other site files' included, would never match.
 */
export function matchesEveryHost(rule: Pick<MxRule, 'masks' | 'publicIds'>): boolean {
  return (
    rule.publicIds.length === 0 &&
    rule.masks.map(withoutRootDot).some((m) => /^[*?]*\*[*?]*$/.test(m) && m.split('?').length <= 4)
  );
}

function checkPackConsistency(pack: RulePack): PackIssue[] {
  const issues: PackIssue[] = [];
  const seen = new Map<string, number>();
  pack.rules.forEach((rule, index) => {
    const previous = seen.get(rule.name.toLowerCase());
    if (previous !== undefined)
      issues.push(
        issue(
          pack.file,
          rule.source.line,
          `rules[${index}].name`,
          `duplicate rule name "${rule.name}" (first at rules[${previous}])`,
        ),
      );
    else seen.set(rule.name.toLowerCase(), index);
    if (isGenericRule(rule) && index !== pack.rules.length - 1) {
      issues.push(
        issue(
          pack.file,
          rule.source.line,
          `rules[${index}].mask`,
          'the generic rule (mask "*") must be the last rule: rules after it can never match',
        ),
      );
    } else if (!isGenericRule(rule) && matchesEveryHost(rule))
      issues.push(
        issue(
          pack.file,
          rule.source.line,
          `rules[${index}].mask`,
          'this mask matches every MX host like the generic rule "*": rules after it (other site files\' too) could never match; change the generic rule instead',
        ),
      );
  });
  const masks = pack.rules.reduce((sum, rule) => sum + rule.masks.length, 0);
  if (masks > maxMasks)
    issues.push(
      issue(pack.file, pack.rules[0]!.source.line, 'rules', `at most ${maxMasks} masks in a pack, not ${masks}`),
    );
  const backoffNames = new Set<string>();
  pack.backoff.forEach((rule, index) => {
    if (backoffNames.has(rule.name.toLowerCase()))
      issues.push(
        issue(pack.file, rule.source.line, `backoff[${index}].name`, `duplicate backoff name "${rule.name}"`),
      );
    backoffNames.add(rule.name.toLowerCase());
  });
  return issues;
}

export function formatIssue(issue: PackIssue): string {
  return `${issue.file}:${issue.line}: ${issue.path}: ${issue.message}`;
}

function issue(file: string, line: number, path: string, message: string): PackIssue {
  return { file, line, path, message };
}

function fail(file: string, line: number, path: string, message: string): PackResult {
  return { ok: false, issues: [issue(file, line, path, message)] };
}

function sortIssues(issues: PackIssue[]): PackIssue[] {
  return [...issues].sort((a, b) => a.line - b.line);
}

function formatPath(path: Array<string | number>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out || '(root)';
}

// The line of the deepest node that exists along `path`; for a map key, the key's own line.
function lineOfPath(document: Document, lineCounter: LineCounter, path: Array<string | number>): number {
  let node: unknown = document.contents;
  let offset = (node as Node | null)?.range?.[0] ?? 0;
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(part),
      );
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
      continue;
    }
    const items = (node as { items?: unknown[] } | null)?.items;
    if (Array.isArray(items) && typeof part === 'number' && items[part] !== undefined) {
      node = items[part];
      offset = (node as Node).range?.[0] ?? offset;
      continue;
    }
    break;
  }
  return lineCounter.linePos(offset).line;
}
