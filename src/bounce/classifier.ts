import { compileHostGlob, type HostGlob } from '../common/host-glob.ts';
import type { BouncePack, BounceRule } from './rule-pack.ts';
import type { SmtpReply } from './smtp-reply.ts';
import { compileTextPatterns } from './text-patterns.ts';
import type { BounceCategory, DecidedBy, DsnAction, FailureReason, FailureType, SmtpPhase, Verdict } from './types.ts';

// The pack is compiled once (regexes, status and code patterns) into a pure classifier: no I/O,
// no clock, the same reply always gives the same verdict for a given pack version.

export interface BounceClassifier {
  readonly version: string;
  /**
   * First matching rule wins; no match gives category `undefined` (to be qualified by an operator).
   * `report` is what a bounce report says beside the reply (its RFC 3464 Action).
   */
  classifyReply(reply: SmtpReply, report?: ReportContext): Verdict;
  /** The verdict for a category decided outside the rules (ARF report, auto-reply, delivered DSN). */
  verdictFor(category: BounceCategory, ruleId: string | null, transient?: boolean): Verdict;
}

export interface ReportContext {
  action?: DsnAction;
}

/** A reply with the code and enhanced status filled in from the text when the caller had none. */
export interface NormalizedReply {
  code?: number;
  enhancedStatus?: string;
  text: string;
  phase?: SmtpPhase;
  mxHost?: string;
}

interface CompiledRule {
  rule: BounceRule;
  status?: ((parts: string[]) => boolean)[];
  /** Reply codes (200–599) the rule's `code` patterns accept, by code: 1 accepted. */
  codes?: Uint8Array;
  /** The rule's `code` lists `none`: a reply without a code matches. */
  codeNone?: boolean;
  /** The rule's text patterns as one RegExp source (case-insensitive). */
  text?: string;
  /** Index of `text` in the pack's distinct text patterns (text-patterns.ts). */
  textIndex?: number;
  phase?: Set<SmtpPhase>;
  mxHost?: HostGlob;
  action?: Set<DsnAction>;
  decidedBy: DecidedBy;
}

// Regular expressions run over at most this much text: diagnostics longer than this are
// boilerplate or quoted content, and the cap keeps classification time bounded.
const MAX_TEXT = 2000;
// RFC 3463 status; the look-arounds keep IP addresses (192.0.2.153) and versions from matching.
const STATUS_IN_TEXT = /(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)/;
const CODE_AT_START = /^[\s#(<[]*([245]\d\d)(?![\d.])/;

export function normalizeReply(reply: SmtpReply): NormalizedReply {
  const text = joinContinuations(
    (reply.text.length > MAX_TEXT * 2 ? reply.text.slice(0, MAX_TEXT * 2) : reply.text).replace(/\s+/g, ' ').trim(),
  ).slice(0, MAX_TEXT);
  const normalized: NormalizedReply = { text };
  const code = reply.code ?? Number(CODE_AT_START.exec(text)?.[1] ?? Number.NaN);
  if (Number.isInteger(code) && code >= 200 && code < 600) normalized.code = code;
  const status = reply.enhanced ?? STATUS_IN_TEXT.exec(text)?.slice(1, 4).join('.');
  if (status && /^[245]\.\d{1,3}\.\d{1,3}$/.test(status)) normalized.enhancedStatus = status;
  if (reply.phase) normalized.phase = reply.phase;
  if (reply.mxHost) normalized.mxHost = reply.mxHost.toLowerCase().replace(/\.$/, '');
  return normalized;
}

// A multi-line reply repeats "550-5.7.1 " on every line (RFC 5321 §4.2.1); once joined, the
// repeats would split phrases ("at a rate that 550-5.2.1 prevents"), so they are removed.
function joinContinuations(text: string): string {
  const first = /^([245]\d\d)[ -]((?:[245]\.\d{1,3}\.\d{1,3} )?)/.exec(text);
  if (!first) return text;
  const head = text.slice(0, first[0].length);
  const rest = text
    .slice(first[0].length)
    .replace(CONTINUATION, (match, code: string, status: string) =>
      code === first[1] && status === first[2] ? ' ' : match,
    );
  return head + rest;
}
const CONTINUATION = / ([245]\d\d)[ -]((?:[245]\.\d{1,3}\.\d{1,3} )?)/g;

export interface CompileOptions {
  /**
   * How many distinct replies keep their verdict (least recently used dropped first); 0 disables.
   * A send hears the same reply from one provider for thousands of recipients.
   */
  cacheSize?: number;
}

// Verdicts of this many distinct replies are remembered (keys are at most MAX_CACHED_TEXT long).
const DEFAULT_CACHE_SIZE = 2_000;
const MAX_CACHED_TEXT = 1_000;

export function compileBounceRules(pack: BouncePack, options: CompileOptions = {}): BounceClassifier {
  const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
  const compiled = pack.rules.map(compileRule);
  // Rules that read the same wording under different conditions (the user-unknown family at
  // RCPT TO, with an address status, …) share one pattern, so a reply is tested against it once.
  const sources: string[] = [];
  const indexBySource = new Map<string, number>();
  for (const c of compiled) {
    if (c.text === undefined) continue;
    let index = indexBySource.get(c.text);
    if (index === undefined) {
      index = sources.push(c.text) - 1;
      indexBySource.set(c.text, index);
    }
    c.textIndex = index;
  }
  const textPatterns = compileTextPatterns(sources);
  const verdictFor = (
    category: BounceCategory,
    ruleId: string | null,
    transient = false,
    rule?: BounceRule,
    decidedBy: DecidedBy = ruleId ?? 'none',
  ): Verdict => {
    const reason: FailureReason = rule?.reason ?? pack.categories[category];
    let type: FailureType = rule?.type ?? pack.types[reason];
    // RFC 5321 §4.2.1: a 4yz reply is transient, so it can never be a permanent (hard) failure.
    if (transient && type === 'hard' && !rule?.type) type = 'soft';
    return { category, reason, type, ruleId, packVersion: pack.version, decidedBy };
  };
  const decide = (reply: SmtpReply, report: ReportContext | undefined): Verdict => {
    const normalized = normalizeReply(reply);
    const statusParts = normalized.enhancedStatus?.split('.');
    const code = normalized.code;
    const transient =
      normalized.code !== undefined ? normalized.code < 500 && normalized.code >= 400 : statusParts?.[0] === '4';
    let textMatches: ((index: number) => boolean) | undefined;
    for (const c of compiled) {
      if (c.phase && (!normalized.phase || !c.phase.has(normalized.phase))) continue;
      if (c.codes && (code === undefined ? !c.codeNone : c.codes[code] !== 1)) continue;
      if (c.status && (!statusParts || !c.status.some((match) => match(statusParts)))) continue;
      if (c.mxHost && (!normalized.mxHost || !c.mxHost.test(normalized.mxHost))) continue;
      if (c.action && (!report?.action || !c.action.has(report.action))) continue;
      if (c.textIndex !== undefined) {
        textMatches ??= textPatterns.forText(normalized.text);
        if (!textMatches(c.textIndex)) continue;
      }
      return verdictFor(c.rule.category, c.rule.id, transient, c.rule, c.decidedBy);
    }
    return verdictFor('undefined', null, transient);
  };
  const cache = new Map<string, Verdict>();
  return {
    version: pack.version,
    verdictFor: (category, ruleId, transient) => verdictFor(category, ruleId, transient),
    classifyReply(reply: SmtpReply, report?: ReportContext): Verdict {
      // The verdict is a function of exactly these inputs (normalizeReply reads nothing else).
      if (cacheSize === 0 || reply.text.length > MAX_CACHED_TEXT) return decide(reply, report);
      // The JSON array ends unambiguously, so no two inputs share a key.
      const key = JSON.stringify([reply.code, reply.enhanced, reply.phase, reply.mxHost, report?.action]) + reply.text;
      let verdict = cache.get(key);
      if (verdict) {
        cache.delete(key);
      } else {
        verdict = decide(reply, report);
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      }
      cache.set(key, verdict);
      // A copy: a caller changing its verdict cannot change the next caller's.
      return { ...verdict };
    },
  };
}

// A rule that reads the wording (or the SMTP phase, or the MX host) is named by its id; a rule
// that reads only codes says which code's meaning decided: the report's Action, else the
// enhanced status, else the basic reply code (the fallback order of docs/bounce-rules.md).
function decidedByOf(rule: BounceRule): DecidedBy {
  if (rule.text || rule.phase || rule.mxHost) return rule.id;
  if (rule.action) return 'dsn-action';
  if (rule.status) return 'enhanced-status';
  return 'reply-code';
}

function compileRule(rule: BounceRule): CompiledRule {
  const compiled: CompiledRule = { rule, decidedBy: decidedByOf(rule) };
  if (rule.status) compiled.status = rule.status.map(compileStatusPattern);
  if (rule.code) {
    const patterns = rule.code.filter((c) => c !== 'none');
    const accepts = new RegExp(`^(?:${patterns.map((c) => c.replace(/x/g, '\\d')).join('|') || '(?!)'})$`);
    // A lookup instead of a RegExp per reply: normalised codes are integers from 200 to 599.
    compiled.codes = new Uint8Array(600);
    for (let code = 200; code < 600; code++) if (accepts.test(String(code))) compiled.codes[code] = 1;
    if (patterns.length < rule.code.length) compiled.codeNone = true;
  }
  if (rule.text) compiled.text = rule.text.map((t) => `(?:${t})`).join('|');
  if (rule.phase) compiled.phase = new Set(rule.phase);
  if (rule.action) compiled.action = new Set(rule.action);
  if (rule.mxHost) {
    // Not a RegExp: a glob such as `*a*a*a*z` backtracks over a long host (common/host-glob.ts).
    const globs = rule.mxHost.map((m) => compileHostGlob(m.toLowerCase()));
    compiled.mxHost = { test: (host) => globs.some((glob) => glob.test(host)) };
  }
  return compiled;
}

function compileStatusPattern(pattern: string): (parts: string[]) => boolean {
  const want = pattern.split('.');
  return (parts) => want.every((w, i) => w === 'x' || w === parts[i]);
}
