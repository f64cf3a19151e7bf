// Vocabulary of bounce qualification (DESIGN.md): the fine category decides the coarse reason,
// and the reason decides the failure type; both mappings are rule-pack data.

export const BOUNCE_CATEGORIES = [
  'userunknown', 'hasmoved', 'hostunknown', 'notaccept', 'mailboxfull', 'suspend', 'expired',
  'networkerror', 'systemerror', 'systemfull', 'mailererror', 'blocked', 'rejected', 'filtered',
  'spamdetected', 'virusdetected', 'contenterror', 'policyviolation', 'securityerror', 'authfailure',
  'badreputation', 'requireptr', 'norelaying', 'ratelimited', 'emailtoolarge', 'exceedlimit',
  'syntaxerror', 'notcompliantrfc', 'failedstarttls', 'feedback', 'vacation', 'delivered', 'onhold',
  'suppressed', 'undefined',
] as const;
export type BounceCategory = (typeof BOUNCE_CATEGORIES)[number];

export const FAILURE_REASONS = [
  'user_unknown', 'invalid_domain', 'unreachable', 'account_disabled', 'mailbox_full', 'not_connected',
  'refused', 'denylisted', 'quarantined', 'duplicate', 'invalid_address', 'expired', 'ignored', 'not_defined',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export const FAILURE_TYPES = ['hard', 'soft', 'ignored'] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

export const SMTP_PHASES = ['connect', 'helo', 'mail', 'rcpt', 'data', 'dot'] as const;
/** The SMTP command the reply answered: `dot` is the reply to the end of DATA. */
export type SmtpPhase = (typeof SMTP_PHASES)[number];

/** One SMTP reply, as the MTA saw it or as a bounce message reported it. */
export interface SmtpReply {
  /** Three-digit reply code (RFC 5321 §4.2), when known. */
  code?: number;
  /** Enhanced status code (RFC 3463), e.g. `5.1.1`, when known. */
  enhancedStatus?: string;
  /** Reply text (the diagnostic); line breaks and folding are allowed. */
  text: string;
  phase?: SmtpPhase;
  /** Name of the MX host that replied, for rules scoped to one provider. */
  mxHost?: string;
}

/** The qualification of one reply or one bounced recipient. */
export interface Verdict {
  category: BounceCategory;
  reason: FailureReason;
  type: FailureType;
  /** Id of the rule that matched, or `null` when no rule matched (category `undefined`). */
  ruleId: string | null;
  packVersion: string;
}

export function isBounceCategory(value: string): value is BounceCategory {
  return (BOUNCE_CATEGORIES as readonly string[]).includes(value);
}

export function isFailureReason(value: string): value is FailureReason {
  return (FAILURE_REASONS as readonly string[]).includes(value);
}
