import type { BouncePack, BounceRule } from './rule-pack.ts';
import type { BounceCategory, FailureReason, FailureType, SmtpPhase, SmtpReply, Verdict } from './types.ts';

// The pack is compiled once (regexes, status and code patterns) into a pure classifier: no I/O,
// no clock, the same reply always gives the same verdict for a given pack version.

export interface BounceClassifier {
  readonly version: string;
  /** First matching rule wins; no match gives category `undefined` (to be qualified by an operator). */
  classifyReply(reply: SmtpReply): Verdict;
  /** The verdict for a category decided outside the rules (ARF report, auto-reply, delivered DSN). */
  verdictFor(category: BounceCategory, ruleId: string | null, transient?: boolean): Verdict;
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
  code?: RegExp;
  text?: RegExp;
  phase?: Set<SmtpPhase>;
  mxHost?: RegExp;
}

// Regular expressions run over at most this much text: diagnostics longer than this are
// boilerplate or quoted content, and the cap keeps classification time bounded.
const MAX_TEXT = 2000;
// RFC 3463 status; the look-arounds keep IP addresses (192.0.2.153) and versions from matching.
const STATUS_IN_TEXT = /(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)/;
const CODE_AT_START = /^[\s#(<[]*([245]\d\d)(?![\d.])/;

export function normalizeReply(reply: SmtpReply): NormalizedReply {
  const text = joinContinuations((reply.text.length > MAX_TEXT * 2 ? reply.text.slice(0, MAX_TEXT * 2) : reply.text).replace(/\s+/g, ' ').trim()).slice(0, MAX_TEXT);
  const normalized: NormalizedReply = { text };
  const code = reply.code ?? Number(CODE_AT_START.exec(text)?.[1] ?? Number.NaN);
  if (Number.isInteger(code) && code >= 200 && code < 600) normalized.code = code;
  const status = reply.enhancedStatus ?? STATUS_IN_TEXT.exec(text)?.slice(1, 4).join('.');
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
  const rest = text.slice(first[0].length).replace(CONTINUATION, (match, code: string, status: string) => (code === first[1] && status === first[2] ? ' ' : match));
  return head + rest;
}
const CONTINUATION = / ([245]\d\d)[ -]((?:[245]\.\d{1,3}\.\d{1,3} )?)/g;

export function compileBounceRules(pack: BouncePack): BounceClassifier {
  const compiled = pack.rules.map(compileRule);
  const verdictFor = (category: BounceCategory, ruleId: string | null, transient = false, rule?: BounceRule): Verdict => {
    const reason: FailureReason = rule?.reason ?? pack.categories[category];
    let type: FailureType = rule?.type ?? pack.types[reason];
    // RFC 5321 §4.2.1: a 4yz reply is transient, so it can never be a permanent (hard) failure.
    if (transient && type === 'hard' && !rule?.type) type = 'soft';
    return { category, reason, type, ruleId, packVersion: pack.version };
  };
  return {
    version: pack.version,
    verdictFor: (category, ruleId, transient) => verdictFor(category, ruleId, transient),
    classifyReply(reply: SmtpReply): Verdict {
      const normalized = normalizeReply(reply);
      const statusParts = normalized.enhancedStatus?.split('.');
      const codeText = normalized.code === undefined ? undefined : String(normalized.code);
      const transient = normalized.code !== undefined ? normalized.code < 500 && normalized.code >= 400 : statusParts?.[0] === '4';
      for (const c of compiled) {
        if (c.phase && (!normalized.phase || !c.phase.has(normalized.phase))) continue;
        if (c.code && (!codeText || !c.code.test(codeText))) continue;
        if (c.status && (!statusParts || !c.status.some((match) => match(statusParts)))) continue;
        if (c.mxHost && (!normalized.mxHost || !c.mxHost.test(normalized.mxHost))) continue;
        if (c.text && !c.text.test(normalized.text)) continue;
        return verdictFor(c.rule.category, c.rule.id, transient, c.rule);
      }
      return verdictFor('undefined', null, transient);
    },
  };
}

function compileRule(rule: BounceRule): CompiledRule {
  const compiled: CompiledRule = { rule };
  if (rule.status) compiled.status = rule.status.map(compileStatusPattern);
  if (rule.code) compiled.code = new RegExp(`^(?:${rule.code.map((c) => c.replace(/x/g, '\\d')).join('|')})$`);
  if (rule.text) compiled.text = new RegExp(rule.text.map((t) => `(?:${t})`).join('|'), 'i');
  if (rule.phase) compiled.phase = new Set(rule.phase);
  if (rule.mxHost) {
    const globs = rule.mxHost.map((m) => m.toLowerCase().replace(/[.]/g, '\\.').replace(/\*/g, '.*'));
    compiled.mxHost = new RegExp(`^(?:${globs.join('|')})$`);
  }
  return compiled;
}

function compileStatusPattern(pattern: string): (parts: string[]) => boolean {
  const want = pattern.split('.');
  return (parts) => want.every((w, i) => w === 'x' || w === parts[i]);
}
