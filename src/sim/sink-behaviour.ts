// What a simulated SMTP host does, declared as data, and the pure decisions taken from it.
// Time is always passed in (the sink reads it from an injected Clock), so tests drive greylisting
// and rate limits without sleeping.

export interface SmtpReply {
  code: number;
  /** RFC 3463 enhanced status code, e.g. '5.1.1'. */
  enhanced?: string;
  text: string;
  /** Close the connection after sending this reply (RFC 5321 §3.8: 421 means the server is closing). */
  close?: boolean;
}

/** A declared RCPT rule: recipients whose local part starts with `localPartPrefix` get `reply`. */
export interface RcptRule {
  localPartPrefix: string;
  reply: SmtpReply;
}

/** What a custom RCPT decision sees. `state` is read-only; `now` comes from the sink's clock. */
export interface RcptRequest {
  sender: string;
  address: string;
  localPart: string;
  domain: string;
  now: number;
  state: SinkStateView;
}

export interface SinkStateView {
  readonly messagesAccepted: number;
  acceptedCount(address: string): number;
}

/** 'before-greeting': accept TCP and never say anything; 'after-data': take the whole message, never answer it. */
export type StallPoint = 'before-greeting' | 'after-data';

export interface SinkBehaviour {
  /** Replaces the 220 greeting, e.g. `{ code: 421, enhanced: '4.3.2', text: 'Service not available', close: true }`. */
  greeting?: SmtpReply;
  /**
   * Replaces the greeting for clients connecting from these addresses: a host refusing a sending
   * IP on its reputation (`554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using
   * zen.spamhaus.org`). RFC 5321 §3.1: the server then waits for QUIT.
   */
  greetingByClient?: Record<string, SmtpReply>;
  /** Replaces the reply to EHLO once STARTTLS is done: a host that answers only HELO inside TLS. */
  ehloAfterTls?: SmtpReply;
  /** Checked in order; the first matching prefix decides. Recipients matching nothing are accepted. */
  rcptRules?: RcptRule[];
  /** Custom decision, consulted before `rcptRules`; return undefined to fall through to them. */
  decideRcpt?: (request: RcptRequest) => SmtpReply | undefined;
  /** More than this many transactions (MAIL FROM) per minute per sink get 421 4.7.0 and the connection closed. */
  rateLimitPerMinute?: number;
  /** First attempt per (sender, recipient) gets 451 4.7.1; attempts at least `delayMs` later are accepted. */
  greylist?: { delayMs: number };
  /** Destroy the socket as soon as message bytes arrive after 354. */
  dropDuringData?: boolean;
  stall?: StallPoint;
}

export const acceptReply: SmtpReply = { code: 250, enhanced: '2.1.5', text: 'Recipient OK' };
export const rateLimitReply: SmtpReply = {
  code: 421,
  enhanced: '4.7.0',
  text: 'Too many messages, slow down',
  close: true,
};
export const greylistReply: SmtpReply = { code: 451, enhanced: '4.7.1', text: 'Greylisted, try again later' };

export function formatReply(reply: SmtpReply): string {
  const prefix = reply.enhanced ? `${reply.enhanced} ` : '';
  return `${reply.code} ${prefix}${reply.text}\r\n`;
}

/** Splits at the last '@' (a quoted local part may itself contain '@'). */
export function splitAddress(address: string): { localPart: string; domain: string } {
  const at = address.lastIndexOf('@');
  if (at < 0) return { localPart: address, domain: '' };
  return { localPart: address.slice(0, at), domain: address.slice(at + 1).toLowerCase() };
}

export function decideRcptReply(behaviour: SinkBehaviour, request: RcptRequest): SmtpReply {
  const custom = behaviour.decideRcpt?.(request);
  if (custom) return custom;
  const localPart = request.localPart.toLowerCase();
  for (const rule of behaviour.rcptRules ?? []) {
    if (localPart.startsWith(rule.localPartPrefix.toLowerCase())) return rule.reply;
  }
  return acceptReply;
}

/** A fixed one-minute window opened by the first transaction after the previous window ended. */
export interface RateWindow {
  startedAt: number;
  count: number;
}

export function admitTransaction(
  window: RateWindow,
  limitPerMinute: number,
  now: number,
): { admitted: boolean; window: RateWindow } {
  const expired = window.count === 0 || now - window.startedAt >= 60_000 || now < window.startedAt;
  const current = expired ? { startedAt: now, count: 0 } : window;
  if (current.count >= limitPerMinute) return { admitted: false, window: current };
  return { admitted: true, window: { startedAt: current.startedAt, count: current.count + 1 } };
}

/**
 * Greylisting keyed on (sender, recipient); real greylisters also key on the client IP, which is
 * always loopback here. Returns whether to defer and the updated first-seen time for the key.
 */
export function greylistDecision(
  firstSeenAt: number | undefined,
  delayMs: number,
  now: number,
): { defer: boolean; firstSeenAt: number } {
  if (firstSeenAt === undefined) return { defer: true, firstSeenAt: now };
  return { defer: now - firstSeenAt < delayMs, firstSeenAt };
}
