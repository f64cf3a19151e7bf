// Vocabulary of bounce qualification (DESIGN.md): the fine category decides the coarse reason,
// and the reason decides the failure type; both mappings are rule-pack data.

import type { SmtpReply } from './smtp-reply.ts';

export const BOUNCE_CATEGORIES = [
  'userunknown',
  'hasmoved',
  'hostunknown',
  'notaccept',
  'mailboxfull',
  'suspend',
  'expired',
  'networkerror',
  'systemerror',
  'systemfull',
  'mailererror',
  'blocked',
  'rejected',
  'filtered',
  'spamdetected',
  'virusdetected',
  'contenterror',
  'policyviolation',
  'securityerror',
  'authfailure',
  'badreputation',
  'requireptr',
  'norelaying',
  'ratelimited',
  'emailtoolarge',
  'exceedlimit',
  'syntaxerror',
  'notcompliantrfc',
  'failedstarttls',
  'feedback',
  'vacation',
  'delivered',
  'onhold',
  'suppressed',
  'undefined',
] as const;
export type BounceCategory = (typeof BOUNCE_CATEGORIES)[number];

export const FAILURE_REASONS = [
  'user_unknown',
  'invalid_domain',
  'unreachable',
  'account_disabled',
  'mailbox_full',
  'not_connected',
  'refused',
  'denylisted',
  'quarantined',
  'duplicate',
  'invalid_address',
  'expired',
  'ignored',
  'not_defined',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export const FAILURE_TYPES = ['hard', 'soft', 'ignored'] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

/** RFC 3464 Action values of a delivery status notification. */
export const DSN_ACTIONS = ['failed', 'delayed', 'delivered', 'relayed', 'expanded'] as const;
export type DsnAction = (typeof DSN_ACTIONS)[number];

/**
 * Which step of qualification decided a verdict: the id of the rule that read the reply's wording
 * (or its SMTP phase, or the MX host), else the meaning of the enhanced status (RFC 3463), of the
 * basic reply code (RFC 5321), of the report's Action (RFC 3464); `none` when nothing carried
 * information (category `undefined`). Built-in verdicts say `default` or `local.<failure>`, report
 * kinds `report.<format>`.
 */
export type DecidedBy = string;

export const SMTP_PHASES = ['connect', 'helo', 'mail', 'rcpt', 'data', 'dot'] as const;
/** The SMTP command the reply answered: `dot` is the reply to the end of DATA. */
export type SmtpPhase = (typeof SMTP_PHASES)[number];

/**
 * The qualification of one reply or one bounced recipient: what the MTA retries on, what the
 * delivery log records, what the breaker and the quarantine decide from.
 */
export interface Verdict {
  category: BounceCategory;
  reason: FailureReason;
  type: FailureType;
  /**
   * Id of the rule that matched; `local.<failure>` for a failure without a reply (DNS, TCP, timeout),
   * `default` for the built-in verdicts; `null` when no rule matched (category `undefined`).
   */
  ruleId: string | null;
  /** Version of the rule pack that decided; null for the built-in verdicts (default-verdict.ts). */
  packVersion: string | null;
  /** The step that decided (see DecidedBy); set by the rule-pack classifier. */
  decidedBy?: DecidedBy;
}

/** Qualifies a non-2xx reply or a local failure (reply-classifier.ts, or defaultVerdict without a pack). */
export type ClassifyReply = (reply: SmtpReply) => Verdict;

export function isBounceCategory(value: string): value is BounceCategory {
  return (BOUNCE_CATEGORIES as readonly string[]).includes(value);
}

export function isFailureReason(value: string): value is FailureReason {
  return (FAILURE_REASONS as readonly string[]).includes(value);
}
