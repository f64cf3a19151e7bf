import type { ReplyGroup } from './snapshot.ts';

// What a stored last reply says about why a message did not go: the doctor's reading of the
// delivery logs' reply code, enhanced status, qualification and text. Pure.
//
// Local failures (no server answered) are stored with code null; the MX resolver gives DNS failures
// their RFC 3463 status (4.4.3 lookup failed, 4.4.4 no address, 5.1.2 no such domain, 5.1.10 null
// MX, RFC 7505), the SMTP client keeps Node's words (ECONNREFUSED, timeout, TLS).

export type ReplyKind =
  | { kind: 'reputation'; detail: 'blocklist' | 'policy' }
  | { kind: 'throttling' }
  | { kind: 'unreachable'; detail: 'refused' | 'timeout' | 'tls' | 'closed' | 'lost' }
  | { kind: 'dns'; detail: 'servfail' | 'timeout' | 'nxdomain' | 'null_mx' | 'no_address' | 'lookup_failed' }
  | { kind: 'other' };

// Wordings of blocklist and reputation refusals, as the large providers and the DNSBLs write them:
//   550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org
//   554 5.7.1 ... listed on the Spamhaus Block List / "blacklisted" / "poor reputation"
//   421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to user complaints
//   550 5.7.606 Access denied, banned sending IP [192.0.2.1] (Outlook)
const blocklistWording =
  /\b(?:block ?list(?:ed)?|black ?list(?:ed)?|deny ?list(?:ed)?|blocked using|listed (?:at|on|in|by)|spamhaus|spamcop|barracuda|sorbs|dnsbl|rbl\b|banned sending ip|(?:poor|bad|low|ip|sender|domain) reputation|reputation of|user complaints|abuse report)/i;
const throttleWording =
  /\b(?:rate limit|ratelimit|too many|slow down|throttl|try again later|unexpected volume|greylist|graylist|deferred due to (?:unexpected )?volume|exceeded)/i;
const throttleCategories = new Set(['ratelimited', 'exceedlimit']);
const reputationCategories = new Set(['badreputation', 'spamdetected', 'requireptr', 'policyviolation']);

export function replyKind(reply: Pick<ReplyGroup, 'code' | 'enhanced' | 'category' | 'sample'>): ReplyKind {
  const text = reply.sample;
  if (reply.code === null) {
    const enhanced = reply.enhanced ?? '';
    if (enhanced === '5.1.10' || /null MX/i.test(text)) return { kind: 'dns', detail: 'null_mx' };
    if (enhanced === '5.1.2' || /NXDOMAIN|does not exist|no MX and no A/i.test(text))
      return { kind: 'dns', detail: 'nxdomain' };
    if (enhanced === '4.4.4') return { kind: 'dns', detail: 'no_address' };
    if (enhanced === '4.4.3' || /lookup for .* failed/i.test(text)) {
      if (/SERVFAIL/i.test(text)) return { kind: 'dns', detail: 'servfail' };
      if (/TIMEOUT|TIMEDOUT/i.test(text)) return { kind: 'dns', detail: 'timeout' };
      return { kind: 'dns', detail: 'lookup_failed' };
    }
    if (reply.category === 'failedstarttls' || /\b(?:TLS|SSL|STARTTLS|certificate)\b/i.test(text))
      return { kind: 'unreachable', detail: 'tls' };
    if (/ECONNREFUSED|connection refused/i.test(text)) return { kind: 'unreachable', detail: 'refused' };
    // The SMTP client's words ("connection timeout: …", "timeout: no reply …"), and nodemailer's in older logs ("Greeting never received").
    if (/timeout|timed out|ETIMEDOUT|never received/i.test(text)) return { kind: 'unreachable', detail: 'timeout' };
    // Expired before an attempt (local.expired: paced, held or suspended until the validity ended) says nothing of the host.
    if (reply.category === 'expired') return { kind: 'other' };
    return { kind: 'unreachable', detail: 'lost' };
  }
  if (reply.code < 400) return { kind: 'other' };
  if (blocklistWording.test(text) || reply.category === 'badreputation')
    return { kind: 'reputation', detail: 'blocklist' };
  if (throttleCategories.has(reply.category ?? '') || throttleWording.test(text)) return { kind: 'throttling' };
  const enhanced = reply.enhanced ?? '';
  if (reply.code >= 500 && (enhanced.startsWith('5.7.') || reputationCategories.has(reply.category ?? '')))
    return { kind: 'reputation', detail: 'policy' };
  // 421 without a 4.7.x status: the server is closing the channel (RFC 5321 §3.8), not asking to slow down.
  if (reply.code === 421 && !enhanced.startsWith('4.7.')) return { kind: 'unreachable', detail: 'closed' };
  return { kind: 'other' };
}

/** The IPv4 addresses quoted in a reply (blocklist replies name the listed source address). */
export function quotedIps(text: string): string[] {
  return [...new Set(text.match(/\b(?:\d{1,3}\.){3}\d{1,3}\b/g) ?? [])];
}

/** The host or domain a group of logs waits on: its MX host when one was reached, else the recipient domain. */
export function destinationOf(group: Pick<ReplyGroup, 'mxHost' | 'domain'>): string {
  return group.mxHost ?? group.domain;
}

/** `herald delivery logs N` with the filters that select the logs of these groups. */
export function logsCommand(
  deliveryId: number,
  filters: { status?: string; domain?: string; mx?: string; code?: number | null; enhanced?: string | null },
): string {
  const parts = [`herald delivery logs ${deliveryId}`];
  if (filters.status) parts.push(`--status ${filters.status}`);
  if (filters.domain) parts.push(`--domain ${filters.domain}`);
  if (filters.mx) parts.push(`--mx ${filters.mx}`);
  if (filters.code !== undefined && filters.code !== null) parts.push(`--code ${filters.code}`);
  if (filters.enhanced) parts.push(`--enhanced ${filters.enhanced}`);
  return parts.join(' ');
}
