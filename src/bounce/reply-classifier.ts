import type { BounceClassifier } from './classifier.ts';
import { defaultVerdict } from './default-verdict.ts';
import type { SmtpReply } from './smtp-reply.ts';
import type { ClassifyReply, Verdict } from './types.ts';

// The qualification of the replies the MTA hears, as a ClassifyReply: the rule pack (the current
// classifier, which may be swapped by a reload between two calls) for answered replies, the
// built-in verdicts for failures on our side of the wire (DNS, TCP, timeouts have no reply text
// for rules to read). An `ignored` verdict (an auto-reply during the SMTP dialogue) is retried by
// the MTA like a soft one; the log and the timeline keep the pack's type.

export function createReplyClassifier(current: () => BounceClassifier): ClassifyReply {
  return (reply: SmtpReply): Verdict => (reply.code === null ? defaultVerdict(reply) : current().classifyReply(reply));
}
