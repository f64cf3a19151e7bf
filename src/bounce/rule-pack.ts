import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap } from 'yaml';
import { AppError } from '../common/errors.ts';
import { tooDeepLine, tooDeepMessage } from '../common/yaml-depth.ts';
import { describeSlowPattern, slowPatterns } from './pattern-timing.ts';
import {
  BOUNCE_CATEGORIES,
  DSN_ACTIONS,
  type DsnAction,
  FAILURE_TYPES,
  isBounceCategory,
  isFailureReason,
  SMTP_PHASES,
  type BounceCategory,
  type FailureReason,
  type FailureType,
  type SmtpPhase,
} from './types.ts';

// A bounce rule pack is data: YAML files layered shipped → site. The first file is the base and
// must be complete; each later file may override category/type mappings, replace rules by id,
// add rules (evaluated before the inherited ones) and disable rules.

export interface RuleSource {
  file: string;
  line: number;
}

export interface BounceRule {
  id: string;
  category: BounceCategory;
  /** Overrides the category's default reason. */
  reason?: FailureReason;
  /** Overrides the reason's type. */
  type?: FailureType;
  /** Enhanced status patterns: `5.1.1`, `x.1.1`, `5.7.x`. Any may match. */
  status?: string[];
  /** Reply code patterns: `550`, `5xx`, `55x`; `none` matches a reply without a code. Any may match. */
  code?: string[];
  /** Case-insensitive regular expressions over the reply text (whitespace collapsed). Any may match. */
  text?: string[];
  phase?: SmtpPhase[];
  /** MX host globs (`*.yahoodns.net`). Any may match. */
  mxHost?: string[];
  /** RFC 3464 Action of the bounce report (`failed`, `delayed`); a reply heard over SMTP has none. */
  action?: DsnAction[];
  /**
   * A real reply this rule is for ("550 5.7.1 text"): `herald bounce rules check` verifies that the
   * layered pack decides it with this rule (a test sample kept with the rule).
   */
  example?: string;
  source: RuleSource;
}

export interface BouncePack {
  /** Base version, then `+<site version>` for each overriding file that declares one. */
  version: string;
  categories: Record<BounceCategory, FailureReason>;
  types: Record<FailureReason, FailureType>;
  rules: BounceRule[];
  files: string[];
}

export interface PackIssue {
  file: string;
  line: number;
  message: string;
}

/** One validated file, before layering. */
export interface BouncePackLayer {
  file: string;
  version?: string;
  categories: Partial<Record<BounceCategory, FailureReason>>;
  types: Partial<Record<FailureReason, FailureType>>;
  rules: BounceRule[];
  disable: string[];
}

export const SHIPPED_BOUNCE_PACK = fileURLToPath(new URL('../../rules/bounce/default.yaml', import.meta.url));

const TOP_KEYS = new Set(['version', 'categories', 'types', 'rules', 'disable']);
const RULE_KEYS = new Set([
  'id',
  'category',
  'reason',
  'type',
  'status',
  'code',
  'text',
  'phase',
  'mxHost',
  'action',
  'example',
]);
const STATUS_PATTERN = /^[245x]\.(?:\d{1,3}|x)\.(?:\d{1,3}|x)$/;
const CODE_PATTERN = /^[245x][0-9x][0-9x]$/;
const ID_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;
const MAX_PACK_BYTES = 2 * 1024 * 1024;
const MAX_EXAMPLE = 1_000;
const MAX_RULES = 2_000;

/** Validates one pack file's text; never throws for bad content, returns the issues instead. */
export async function validateBouncePackText(
  text: string,
  file: string,
): Promise<{ layer?: BouncePackLayer; issues: PackIssue[] }> {
  // Here, not only where files are read: a deliverability update validates the text it will write.
  if (Buffer.byteLength(text, 'utf8') > MAX_PACK_BYTES)
    return { issues: [{ file, line: 1, message: `a bounce rule pack is at most ${MAX_PACK_BYTES} bytes` }] };
  const deep = tooDeepLine(text);
  if (deep !== undefined) return { issues: [{ file, line: deep, message: tooDeepMessage }] };
  const issues: PackIssue[] = [];
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineOf = (node: Node | null | undefined): number => (node?.range ? lineCounter.linePos(node.range[0]).line : 1);
  const issue = (node: Node | null | undefined, message: string): void => {
    issues.push({ file, line: lineOf(node), message });
  };
  for (const error of doc.errors)
    issues.push({
      file,
      line: lineCounter.linePos(error.pos[0]).line,
      message: error.message.split('\n')[0] ?? 'YAML error',
    });
  if (issues.length > 0) return { issues };
  if (!isMap(doc.contents)) {
    issue(doc.contents, 'a bounce rule pack is a mapping with version, categories, types and rules');
    return { issues };
  }
  const layer: BouncePackLayer = { file, categories: {}, types: {}, rules: [], disable: [] };
  for (const pair of doc.contents.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const value = pair.value as Node | null;
    if (!TOP_KEYS.has(key)) {
      issue(pair.key as Node, `unknown key "${key}" (expected one of ${[...TOP_KEYS].join(', ')})`);
      continue;
    }
    if (key === 'version') {
      if (
        isScalar(value) &&
        (typeof value.value === 'string' || typeof value.value === 'number') &&
        String(value.value).trim()
      )
        layer.version = String(value.value);
      else issue(value ?? (pair.key as Node), 'version must be a non-empty string');
    } else if (key === 'categories') {
      readMapping(
        value,
        (k, v, node) => {
          if (!isBounceCategory(k)) issue(node, `unknown category "${k}"`);
          else if (!isFailureReason(v)) issue(node, `category ${k}: unknown reason "${v}"`);
          else layer.categories[k] = v;
        },
        issue,
      );
    } else if (key === 'types') {
      readMapping(
        value,
        (k, v, node) => {
          if (!isFailureReason(k)) issue(node, `unknown reason "${k}"`);
          else if (!(FAILURE_TYPES as readonly string[]).includes(v))
            issue(node, `reason ${k}: type must be hard, soft or ignored, not "${v}"`);
          else layer.types[k] = v as FailureType;
        },
        issue,
      );
    } else if (key === 'disable') {
      layer.disable = readStringList(value, 'disable', issue) ?? [];
    } else if (isSeq(value)) {
      // As for MX packs: every rule may be tested on every reply, and each new pattern is timed.
      if (value.items.length > MAX_RULES) issue(value, `at most ${MAX_RULES} rules, not ${value.items.length}`);
      for (const item of value.items) {
        const rule = readRule(item as Node, file, lineOf, issue);
        if (rule) layer.rules.push(rule);
      }
    } else issue(value ?? (pair.key as Node), 'rules must be a list');
  }
  const seen = new Map<string, number>();
  for (const rule of layer.rules) {
    const first = seen.get(rule.id);
    if (first !== undefined)
      issues.push({ file, line: rule.source.line, message: `duplicate rule id "${rule.id}" (first at line ${first})` });
    else seen.set(rule.id, rule.source.line);
  }
  // The shipped pack is measured by its own tests; every other layer (site file, `herald bounce
  // qualify`, a deliverability update) is checked for catastrophic backtracking before it is used.
  if (issues.length === 0 && file !== SHIPPED_BOUNCE_PACK) {
    const slow = new Map(
      (await slowPatterns(layer.rules.flatMap((rule) => rule.text ?? []))).map((s) => [s.pattern, s]),
    );
    for (const rule of layer.rules)
      for (const pattern of rule.text ?? []) {
        const found = slow.get(pattern);
        if (found)
          issues.push({
            file,
            line: rule.source.line,
            message: `rule ${rule.id}: text "${pattern.slice(0, 80)}" ${describeSlowPattern(found)}`,
          });
      }
  }
  return issues.length > 0 ? { issues } : { layer, issues };
}

function readMapping(
  value: Node | null,
  accept: (key: string, value: string, node: Node) => void,
  issue: (n: Node | null | undefined, m: string) => void,
): void {
  if (!isMap(value)) {
    issue(value, 'expected a mapping');
    return;
  }
  for (const pair of (value as YAMLMap).items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    const v = isScalar(pair.value) ? String(pair.value.value) : '';
    accept(k, v, pair.key as Node);
  }
}

function readStringList(
  value: Node | null,
  what: string,
  issue: (n: Node | null | undefined, m: string) => void,
): string[] | undefined {
  if (isScalar(value) && (typeof value.value === 'string' || typeof value.value === 'number'))
    return [String(value.value)];
  if (
    isSeq(value) &&
    value.items.every((item) => isScalar(item) && (typeof item.value === 'string' || typeof item.value === 'number'))
  ) {
    return value.items.map((item) => String((item as { value: unknown }).value));
  }
  issue(value, `${what} must be a string or a list of strings`);
  return undefined;
}

// Failures of every kind, transient and permanent: a rule whose status, code and text conditions
// all accept each of them decides every reply (`code: [xxx]`, `status: x.x.x`, `code: [4xx, 5xx]`,
// `text: '.*'`), so placed before the shipped rules with a hard category it quarantines every
// recipient of every delivery, 4xx deferrals included.
const EVERY_REPLY_PROBES = [
  { code: '550', status: '5.1.1', text: '550 5.1.1 <a@b.c>: Recipient address rejected: User unknown' },
  { code: '552', status: '5.2.2', text: '552 5.2.2 Mailbox full' },
  { code: '554', status: '5.7.1', text: '554 5.7.1 Service unavailable; client host [192.0.2.1] blocked' },
  { code: '421', status: '4.7.0', text: '421 4.7.0 Try again later' },
  { code: '451', status: '4.3.0', text: '451 4.3.0 Temporary local problem' },
];

function decidesEveryReply(status?: string[], code?: string[], text?: string[]): boolean {
  const accepts = (pattern: string, value: string, separator: string): boolean => {
    const want = pattern.split(separator);
    const have = value.split(separator);
    return want.length === have.length && want.every((w, i) => w === 'x' || w === have[i]);
  };
  const texts = text?.map((t) => new RegExp(t, 'i'));
  return EVERY_REPLY_PROBES.every(
    (probe) =>
      (!status || status.some((s) => accepts(s, probe.status, '.'))) &&
      (!code || code.some((c) => accepts(c, probe.code, ''))) &&
      (!texts || texts.some((t) => t.test(probe.text))),
  );
}

function readRule(
  node: Node,
  file: string,
  lineOf: (n: Node | null | undefined) => number,
  issue: (n: Node | null | undefined, m: string) => void,
): BounceRule | undefined {
  if (!isMap(node)) {
    issue(node, 'a rule is a mapping with id, category and match keys');
    return undefined;
  }
  const fields = new Map<string, Node | null>();
  for (const pair of node.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!RULE_KEYS.has(key))
      issue(pair.key as Node, `unknown rule key "${key}" (expected one of ${[...RULE_KEYS].join(', ')})`);
    else fields.set(key, pair.value as Node | null);
  }
  const scalar = (key: string): string | undefined => {
    const value = fields.get(key);
    return isScalar(value) && value.value !== null ? String(value.value) : undefined;
  };
  const id = scalar('id');
  const label = id ? `rule ${id}` : 'rule';
  let ok = true;
  const fail = (at: Node | null | undefined, message: string): void => {
    ok = false;
    issue(at ?? node, `${label}: ${message}`);
  };
  if (!id || !ID_PATTERN.test(id)) fail(fields.get('id'), 'id is required (lowercase letters, digits, . _ -)');
  const category = scalar('category');
  if (!category || !isBounceCategory(category)) fail(fields.get('category'), `unknown category "${category ?? ''}"`);
  const reason = scalar('reason');
  if (reason !== undefined && !isFailureReason(reason)) fail(fields.get('reason'), `unknown reason "${reason}"`);
  const type = scalar('type');
  if (type !== undefined && !(FAILURE_TYPES as readonly string[]).includes(type))
    fail(fields.get('type'), `type must be hard, soft or ignored`);
  const list = (key: string, check: (item: string) => string | undefined): string[] | undefined => {
    if (!fields.has(key)) return undefined;
    const items = readStringList(fields.get(key) ?? null, `${label}: ${key}`, issue);
    if (!items) {
      ok = false;
      return undefined;
    }
    for (const item of items) {
      const problem = check(item);
      if (problem) fail(fields.get(key), `${key} "${item}": ${problem}`);
    }
    return items;
  };
  const status = list('status', (s) =>
    STATUS_PATTERN.test(s) ? undefined : 'expected a pattern like 5.1.1, x.1.1 or 5.7.x',
  );
  const code = list('code', (c) =>
    CODE_PATTERN.test(c) || c === 'none' ? undefined : 'expected a pattern like 550, 5xx or 55x, or none',
  );
  const text = list('text', (t) => {
    try {
      new RegExp(t, 'i');
      return undefined;
    } catch (error) {
      return `invalid regular expression (${(error as Error).message})`;
    }
  });
  const phase = list('phase', (p) =>
    (SMTP_PHASES as readonly string[]).includes(p) ? undefined : `expected one of ${SMTP_PHASES.join(', ')}`,
  );
  const mxHost = list('mxHost', (m) =>
    /^[a-z0-9*.-]+$/i.test(m) ? undefined : 'expected a host name glob like *.example.com',
  );
  const action = list('action', (a) =>
    (DSN_ACTIONS as readonly string[]).includes(a) ? undefined : `expected one of ${DSN_ACTIONS.join(', ')}`,
  );
  const example = scalar('example');
  if (fields.has('example') && (!example || example.length > MAX_EXAMPLE))
    fail(fields.get('example'), `example must be a reply of 1 to ${MAX_EXAMPLE} characters`);
  if (!status && !code && !text && !phase && !mxHost && !action)
    fail(node, 'needs at least one of status, code, text, phase, mxHost, action');
  // Conditions that accept any reply (`.*`, `xxx`, `x.x.x`) decide every reply before the rules
  // after it: with a hard category, every refusal (blocklists, full mailboxes, deferrals) quarantines.
  else if (ok && !phase && !mxHost && !action && decidesEveryReply(status, code, text))
    fail(
      fields.get('text') ?? fields.get('status') ?? fields.get('code'),
      'its status, code and text conditions match any reply: it would decide every reply; add a phase or mxHost, or a status, code or pattern that says something',
    );
  if (!ok || !id || !category || !isBounceCategory(category)) return undefined;
  const rule: BounceRule = { id, category, source: { file, line: lineOf(node) } };
  if (reason && isFailureReason(reason)) rule.reason = reason;
  if (type) rule.type = type as FailureType;
  if (status) rule.status = status;
  if (code) rule.code = code;
  if (text) rule.text = text;
  if (phase) rule.phase = phase as SmtpPhase[];
  if (mxHost) rule.mxHost = mxHost;
  if (action) rule.action = action as DsnAction[];
  if (example) rule.example = example;
  return rule;
}

/** Layers validated files: the first is the base, the others override it in order. */
export function layerBouncePacks(layers: BouncePackLayer[]): { pack?: BouncePack; issues: PackIssue[] } {
  const issues: PackIssue[] = [];
  const [base, ...overrides] = layers;
  if (!base) return { issues: [{ file: '(none)', line: 1, message: 'no bounce rule pack file given' }] };
  if (!base.version) issues.push({ file: base.file, line: 1, message: 'the base pack needs a version' });
  const categories = { ...base.categories };
  const types = { ...base.types };
  let rules = [...base.rules];
  const versions = [base.version ?? '0'];
  for (const layer of overrides) {
    Object.assign(categories, layer.categories);
    Object.assign(types, layer.types);
    if (layer.version) versions.push(layer.version);
    const added: BounceRule[] = [];
    for (const rule of layer.rules) {
      const at = rules.findIndex((r) => r.id === rule.id);
      if (at >= 0) rules[at] = rule;
      else added.push(rule);
    }
    rules = [...added, ...rules];
    for (const id of layer.disable) {
      if (!rules.some((r) => r.id === id))
        issues.push({ file: layer.file, line: 1, message: `disable: no rule "${id}" to disable` });
    }
    const disabled = new Set(layer.disable);
    rules = rules.filter((r) => !disabled.has(r.id));
  }
  // Every category must map to a reason, so adding a category forces every pack to decide.
  const missingCategories = BOUNCE_CATEGORIES.filter((c) => !(c in categories));
  if (missingCategories.length > 0)
    issues.push({ file: base.file, line: 1, message: `categories: no reason for ${missingCategories.join(', ')}` });
  const missingTypes = [...new Set(Object.values(categories))].filter((r) => !(r in types));
  if (missingTypes.length > 0)
    issues.push({ file: base.file, line: 1, message: `types: no type for ${missingTypes.join(', ')}` });
  for (const rule of rules) {
    const reason = rule.reason ?? categories[rule.category];
    if (reason && !(reason in types))
      issues.push({ ...rule.source, message: `rule ${rule.id}: no type for reason ${reason}` });
  }
  if (issues.length > 0) return { issues };
  return {
    pack: {
      version: versions.join('+'),
      categories: categories as Record<BounceCategory, FailureReason>,
      types: types as Record<FailureReason, FailureType>,
      rules,
      files: layers.map((l) => l.file),
    },
    issues,
  };
}

/** Formats issues as `file:line: message` lines, the form every rules validator prints. */
export function formatPackIssues(issues: PackIssue[]): string {
  return issues.map((i) => `${i.file}:${i.line}: ${i.message}`).join('\n');
}

/** Reads, validates and layers pack files; throws RULES_INVALID naming file:line on any problem. */
export async function loadBouncePack(files: string[] = [SHIPPED_BOUNCE_PACK]): Promise<BouncePack> {
  const layers: BouncePackLayer[] = [];
  const issues: PackIssue[] = [];
  for (const file of files) {
    let text: string;
    try {
      const raw = readFileSync(file);
      if (raw.length > MAX_PACK_BYTES)
        throw new AppError('INPUT_TOO_LARGE', `${file}: bounce rule pack over ${MAX_PACK_BYTES} bytes`);
      text = raw.toString('utf8');
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError('RULES_INVALID', `${file}: cannot read bounce rule pack (${(error as Error).message})`, {
        cause: error,
      });
    }
    const result = await validateBouncePackText(text, file);
    issues.push(...result.issues);
    if (result.layer) layers.push(result.layer);
  }
  if (issues.length === 0) {
    const layered = layerBouncePacks(layers);
    if (layered.pack) return layered.pack;
    issues.push(...layered.issues);
  }
  throw new AppError('RULES_INVALID', `bounce rule pack is invalid:\n${formatPackIssues(issues)}`, {
    details: { issues },
  });
}
