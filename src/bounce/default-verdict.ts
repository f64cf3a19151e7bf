import type { SmtpReply } from './smtp-reply.ts';
import type { BounceCategory, FailureReason, FailureType, Verdict } from './types.ts';

// The built-in verdicts: failures without a reply (DNS, TCP, timeouts have no text for rules to
// read), and a small classifier for replies used when no rule pack is given (reply-classifier.ts
// uses the pack). It reads the RFC 3463 enhanced status first (more precise than the basic code).

type Qualification = { type: FailureType; reason: FailureReason; category: BounceCategory };

const byLocalFailure: Record<string, Qualification> = {
  connection_refused: { type: 'soft', reason: 'unreachable', category: 'networkerror' },
  connection_lost: { type: 'soft', reason: 'unreachable', category: 'networkerror' },
  timeout: { type: 'soft', reason: 'unreachable', category: 'networkerror' },
  tls_failed: { type: 'soft', reason: 'unreachable', category: 'failedstarttls' },
  protocol_error: { type: 'soft', reason: 'unreachable', category: 'systemerror' },
  dns_temporary: { type: 'soft', reason: 'unreachable', category: 'networkerror' },
  no_address: { type: 'soft', reason: 'unreachable', category: 'hostunknown' },
  // RFC 7505: a null MX says the domain accepts no mail at all.
  null_mx: { type: 'hard', reason: 'invalid_domain', category: 'hostunknown' },
  domain_not_found: { type: 'hard', reason: 'invalid_domain', category: 'hostunknown' },
  content_error: { type: 'hard', reason: 'not_defined', category: 'contenterror' },
  // RFC 6531 §3.4: a UTF-8 address is never sent to a host that does not offer SMTPUTF8.
  smtputf8_unsupported: { type: 'hard', reason: 'invalid_address', category: 'notaccept' },
  // An address that would split the command line ("a>b"@x.com is valid RFC 5321): never sent, by
  // any server, so retrying it until the delivery expires would only hide it.
  address_unsendable: { type: 'hard', reason: 'invalid_address', category: 'syntaxerror' },
  // RFC 1870 §6.1: larger than the SIZE the server declared, so it would refuse it every time.
  message_too_large: { type: 'hard', reason: 'not_defined', category: 'emailtoolarge' },
  expired: { type: 'soft', reason: 'expired', category: 'expired' },
};

// RFC 3463 subject.detail codes that say more than the class digit does.
const byEnhancedDetail: Record<string, { reason: FailureReason; category: BounceCategory }> = {
  '1.1': { reason: 'user_unknown', category: 'userunknown' },
  '1.2': { reason: 'invalid_domain', category: 'hostunknown' },
  '1.3': { reason: 'invalid_address', category: 'syntaxerror' },
  '1.6': { reason: 'user_unknown', category: 'hasmoved' },
  '1.10': { reason: 'invalid_domain', category: 'hostunknown' },
  '2.1': { reason: 'account_disabled', category: 'suspend' },
  '2.2': { reason: 'mailbox_full', category: 'mailboxfull' },
  '3.4': { reason: 'not_defined', category: 'emailtoolarge' },
  '7.1': { reason: 'refused', category: 'rejected' },
  '7.25': { reason: 'refused', category: 'requireptr' },
};

export function defaultVerdict(reply: SmtpReply): Verdict {
  if (reply.code === null) {
    const local = byLocalFailure[reply.local ?? 'connection_lost'] ?? {
      type: 'soft',
      reason: 'unreachable',
      category: 'networkerror',
    };
    return { ...local, ruleId: `local.${reply.local ?? 'unknown'}`, packVersion: null };
  }
  return { ...qualifyCode(reply.code, reply.enhanced), ruleId: 'default', packVersion: null };
}

function qualifyCode(code: number, enhanced: string | null): Qualification {
  const soft = code < 500;
  const detail = enhanced ? enhanced.slice(enhanced.indexOf('.') + 1) : null;
  // 421 is the server closing the channel (RFC 5321 §3.8); with 4.7.x it is throttling.
  if (code === 421) {
    return detail?.startsWith('7.')
      ? { type: 'soft', reason: 'refused', category: 'ratelimited' }
      : { type: 'soft', reason: 'unreachable', category: 'systemerror' };
  }
  // Greylisting: 451 4.7.1 "try again later" is a delay, not a refusal.
  if (code === 451 && detail === '7.1') return { type: 'soft', reason: 'refused', category: 'blocked' };
  const known = detail ? byEnhancedDetail[detail] : undefined;
  // Mailbox full is transient by nature, even when the server says 5.2.2 (RFC 3463 §3.3).
  if (known?.reason === 'mailbox_full') return { type: 'soft', ...known };
  if (soft) return known ? { type: 'soft', ...known } : { type: 'soft', reason: 'not_defined', category: 'undefined' };
  return known ? { type: 'hard', ...known } : { type: 'hard', reason: 'not_defined', category: 'undefined' };
}
