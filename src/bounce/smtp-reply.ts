import type { SmtpPhase } from './types.ts';

// The one SMTP reply of Herald: what the MTA heard (or the failure that happened without a reply:
// DNS, TCP, timeouts), what a bounce report quoted, what shaping and the quarantine look at.
// Qualification (type/reason/category) is decided from this value by a ClassifyReply (types.ts).

/** Why there is no reply from the remote server: the failure happened on our side of the wire. */
export type LocalFailure =
  | 'connection_refused'
  | 'connection_lost'
  | 'timeout'
  | 'tls_failed'
  | 'protocol_error'
  | 'domain_not_found'
  | 'null_mx'
  | 'dns_temporary'
  | 'no_address'
  | 'content_error'
  | 'smtputf8_unsupported'
  | 'address_unsendable'
  | 'message_too_large'
  | 'expired';

export interface SmtpReply {
  /** Three-digit SMTP code, or null when no server answered (see `local`). */
  code: number | null;
  /** RFC 3463 enhanced status, e.g. '5.1.1', when the server gave one (or the local equivalent). */
  enhanced: string | null;
  /** The reply text without code and enhanced status; lines of a multi-line reply joined by a space. */
  text: string;
  /** Set when the failure was detected locally instead of answered by a server. */
  local?: LocalFailure;
  /** The SMTP command the reply answered, when known (bounce reports say it; rules may match on it). */
  phase?: SmtpPhase;
  /** Name of the MX host that replied, for rules scoped to one provider. */
  mxHost?: string;
}

const maxReplyText = 1_000;
const replyLine = /^(\d{3})([ -])(?:([245]\.\d{1,3}\.\d{1,3})\s+)?(.*)$/;

/**
 * Parses a raw reply as the SMTP client frames it ("550-5.1.1 first\n550 5.1.1 second" or a single
 * line). Text is length-limited: a hostile server must not bloat the delivery log.
 */
export function parseSmtpReply(raw: string): SmtpReply {
  const lines = raw.split(/\r?\n/).filter((line) => line.length > 0);
  let code: number | null = null;
  let enhanced: string | null = null;
  const texts: string[] = [];
  for (const line of lines) {
    const match = replyLine.exec(line);
    if (!match) {
      texts.push(line.trim());
      continue;
    }
    code ??= Number(match[1]);
    enhanced ??= match[3] ?? null;
    texts.push((match[4] ?? '').trim());
  }
  return { code, enhanced, text: limitText(texts.join(' ').trim()) };
}

export function localFailure(local: LocalFailure, text: string, enhanced: string | null = null): SmtpReply {
  return { code: null, enhanced, text: limitText(text), local };
}

/** C0 controls but CR/LF/tab, DEL and C1 controls: terminal escapes (ESC [2J, OSC titles), backspaces, NUL. */
const controlCharacters = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;

/**
 * One line of at most 1,000 characters, with each control character shown as U+FFFD: a reply is
 * the remote server's text, printed by `herald delivery logs`, logs and the doctor, and a hostile
 * MX wrote "\x1b[2J\x1b]0;…\x07" to clear the operator's terminal and forge its lines. A NUL among
 * them also could not be stored by PostgreSQL (text, jsonb): one reply carrying it failed every
 * write of the outcome batch it was in, retried for ever.
 */
export function limitText(text: string): string {
  const flat = text.replace(/[\r\n\t]+/g, ' ').replace(controlCharacters, '\ufffd');
  return flat.length > maxReplyText ? `${flat.slice(0, maxReplyText - 3)}...` : flat;
}

/** "550 5.1.1 User unknown" or "(connection_refused) connect ECONNREFUSED", for logs and the CLI. */
export function formatSmtpReply(reply: SmtpReply): string {
  const head = reply.code === null ? `(${reply.local ?? 'no reply'})` : String(reply.code);
  return [head, reply.enhanced, reply.text].filter((part) => part).join(' ');
}
