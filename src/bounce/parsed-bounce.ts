import type { DsnAction, SmtpPhase } from './types.ts';

export type { DsnAction } from './types.ts';

/**
 * What a bounce message says, before qualification. `dsn` covers every delivery report:
 * RFC 3464 and the human-readable formats of MTAs and providers (`format` says which).
 */
export type BounceKind = 'dsn' | 'arf' | 'auto_reply' | 'not_bounce' | 'unparseable';

export interface ParsedRecipient {
  /** Lower-cased address of the recipient the report is about. */
  recipient: string;
  /** Enhanced status (RFC 3463) as reported, e.g. `5.1.1`. */
  status?: string;
  replyCode?: number;
  /** Diagnostic text: the remote reply or the reporting MTA's explanation. */
  diagnostic: string;
  action?: DsnAction;
  remoteMta?: string;
  /** The SMTP command the remote host was answering, when the report says. */
  phase?: SmtpPhase;
  /** RFC 5965 Feedback-Type for complaint reports (`abuse`, `opt-out`, ...). */
  feedbackType?: string;
}

/** Headers of the message that bounced, as quoted in the report. */
export interface OriginalMessage {
  messageId?: string;
  heraldLogId?: string;
  to?: string;
  from?: string;
  subject?: string;
}

export interface ParsedBounce {
  kind: BounceKind;
  /** Which parser understood it: `rfc3464`, `arf`, `rfc3834`, `text`, `ses-json`, ... */
  format: string;
  recipients: ParsedRecipient[];
  /** The delivery log this bounce is about, from the VERP address or X-Herald-Log-Id. */
  logId?: string;
  logIdSource?: 'verp' | 'header';
  original: OriginalMessage;
  subject?: string;
  from?: string;
  /** The report's own Message-ID header (not the bounced message's). */
  messageId?: string;
  /** Why the message could not be parsed (kind `unparseable`). */
  error?: string;
}
