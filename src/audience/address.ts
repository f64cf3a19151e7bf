import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';

// Syntax check of one recipient address, as typed in a CSV. Pure: no DNS here (a domain without MX
// is found at send time and qualified as invalid_domain there).
//
// Decisions (docs/audience.md):
// - Limits are RFC 5321 §4.5.3.1: local part ≤ 64 octets, domain ≤ 255, label ≤ 63, and the whole
//   address ≤ 254 octets (a forward-path is ≤ 256 including its angle brackets, RFC 5321 errata 1690).
// - Local part: RFC 5322 dot-atom, or a quoted string (RFC 5321 Quoted-string). A quoted local part
//   that is also a valid dot-atom is stored unquoted (RFC 5321 §4.1.2: it SHOULD NOT be quoted).
// - Non-ASCII local parts are RFC 6531 (SMTPUTF8) addresses: accepted by default and flagged
//   `smtputf8`, so the MTA only hands them to MX hosts that announce SMTPUTF8. They are NFC-normalized
//   (RFC 6532 §3.1). `allowSmtpUtf8: false` rejects them instead.
// - Domains are lower-cased and stored in their ASCII (punycode) form, so `bob@Bücher.de` and
//   `bob@xn--bcher-kva.de` are the same recipient. The local part keeps its case (RFC 5321 §2.4).
// - Address literals only in brackets: `[192.0.2.1]`, `[IPv6:2001:db8::1]`.

export type AddressRejectReason =
  | 'empty'
  | 'too_long'
  | 'display_name'
  | 'missing_at'
  | 'local_empty'
  | 'local_too_long'
  | 'local_invalid_char'
  | 'local_dots'
  | 'local_quoted_invalid'
  | 'local_utf8_not_allowed'
  | 'domain_empty'
  | 'domain_too_long'
  | 'domain_no_dot'
  | 'domain_ip_unbracketed'
  | 'domain_literal_invalid'
  | 'label_too_long'
  | 'invalid_domain'
  | 'invalid_tld';

export type AddressCheck =
  | { ok: true; email: string; local: string; domain: string; smtputf8: boolean }
  | { ok: false; reason: AddressRejectReason; message: string };

export interface AddressOptions {
  /** Accept RFC 6531 UTF-8 local parts (default true). */
  allowSmtpUtf8?: boolean;
}

const maxInputChars = 1_000;
const maxAddressOctets = 254;
const maxLocalOctets = 64;
const maxDomainOctets = 255;
const maxLabelOctets = 63;

// RFC 5322 §3.2.3 atext, plus (RFC 6531 §3.3) non-ASCII characters for SMTPUTF8 local parts: those
// that show as something. C1 controls, format characters (bidi overrides such as U+202E, zero-width
// spaces), separators, private-use and unassigned code points are refused: no mailbox is named with
// them, and in a list they make one address display as another.
const dotAtomAscii = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
const visibleNonAscii = String.raw`[^\x00-\x7f\p{Cc}\p{Cf}\p{Z}\p{Co}\p{Cn}\p{Cs}]`;
const atomUtf8 = new RegExp(String.raw`^(?:[A-Za-z0-9!#$%&'*+\-/=?^_\x60{|}~]|${visibleNonAscii})+$`, 'u');
// RFC 5321 §4.1.2 Quoted-string: qtextSMTP = %d32-33 / %d35-91 / %d93-126, quoted-pairSMTP = "\" %d32-126.
const quotedString = new RegExp(
  String.raw`^"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e]|${visibleNonAscii})*"$`,
  'u',
);
const ldhLabel = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
// A TLD is letters only, or an IDN TLD in its A-label form (RFC 3696 §2: never all-numeric).
const tldShape = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;

const utf8 = new TextEncoder();
const octets = (value: string): number => (/^[\x00-\x7f]*$/.test(value) ? value.length : utf8.encode(value).length);

function reject(reason: AddressRejectReason, message: string): AddressCheck {
  return { ok: false, reason, message };
}

export function validateAddress(raw: string, options: AddressOptions = {}): AddressCheck {
  return checkAddress(raw, options.allowSmtpUtf8 ?? true, checkDomain);
}

/**
 * validateAddress for bulk use: the domain check is memoized (a real list has few distinct domains and
 * IDN processing is the costly part). The cache is bounded, so a file of unique domains cannot grow it.
 */
export function createAddressValidator(
  options: AddressOptions = {},
  maxDomains = 10_000,
): (raw: string) => AddressCheck {
  const domains = new Map<string, Part>();
  const cachedDomain = (rawDomain: string): Part => {
    let part = domains.get(rawDomain);
    if (part === undefined) {
      part = checkDomain(rawDomain);
      if (domains.size >= maxDomains) domains.clear();
      domains.set(rawDomain, part);
    }
    return part;
  };
  const allowSmtpUtf8 = options.allowSmtpUtf8 ?? true;
  return (raw) => checkAddress(raw, allowSmtpUtf8, cachedDomain);
}

/** Whether an address is valid, with createAddressValidator's domain memo (preparation's re-check of a whole list). */
export function createAddressPredicate(options: AddressOptions = {}): (raw: string) => boolean {
  const validate = createAddressValidator(options);
  return (raw) => validate(raw).ok;
}

function checkAddress(raw: string, allowSmtpUtf8: boolean, domainOf: (rawDomain: string) => Part): AddressCheck {
  const input = raw.trim();
  if (input === '') return reject('empty', 'the address is empty');
  if (input.length > maxInputChars) return reject('too_long', `the address is ${input.length} characters long`);
  // `Bob <bob@example.com>` is a common export format; say so rather than "bad character".
  if (input.endsWith('>') && input.includes('<'))
    return reject('display_name', 'a name or angle brackets around the address; keep only the address');
  const at = input.lastIndexOf('@');
  if (at < 0) return reject('missing_at', 'no @ in the address');
  const rawLocal = input.slice(0, at);
  const rawDomain = input.slice(at + 1);
  if (rawLocal === '') return reject('local_empty', 'nothing before the @');
  if (rawDomain === '') return reject('domain_empty', 'nothing after the @');

  const local = checkLocal(rawLocal, allowSmtpUtf8);
  if (!local.ok) return local.check;
  const domain = domainOf(rawDomain);
  if (!domain.ok) return domain.check;

  const email = `${local.value}@${domain.value}`;
  const size = octets(email);
  if (size > maxAddressOctets) return reject('too_long', `the address is ${size} octets (max ${maxAddressOctets})`);
  return { ok: true, email, local: local.value, domain: domain.value, smtputf8: local.smtputf8 };
}

type Part = { ok: true; value: string; smtputf8: boolean } | { ok: false; check: AddressCheck };

function checkLocal(rawLocal: string, allowSmtpUtf8: boolean): Part {
  let local = rawLocal;
  if (local.startsWith('"')) {
    if (!quotedString.test(local))
      return {
        ok: false,
        check: reject('local_quoted_invalid', 'the quoted local part is not closed or has a bare " or \\'),
      };
    // One spelling per mailbox (`"john\ smith"` and `"john smith"` are one mailbox, RFC 5321 §4.1.2):
    // unquoted when it is a dot-atom, else quoted with a quoted-pair only for " and \, where one is needed.
    const unquoted = local.slice(1, -1).replace(/\\(.)/g, '$1');
    local = isDotAtom(unquoted, atomUtf8) ? unquoted : `"${unquoted.replace(/["\\]/g, '\\$&')}"`;
  } else if (!dotAtomAscii.test(local)) {
    if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
      return {
        ok: false,
        check: reject('local_dots', 'the local part starts or ends with a dot, or has two dots in a row'),
      };
    }
    if (!isDotAtom(local, atomUtf8)) {
      const bad = [...local].find((c) => c !== '.' && !atomUtf8.test(c)) ?? '?';
      // An invisible or control character is named by its code point: printed as is, it shows nothing.
      const shown = /^[\x21-\x7e]$/.test(bad)
        ? JSON.stringify(bad)
        : `U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
      return {
        ok: false,
        check: reject('local_invalid_char', `character ${shown} is not allowed in the local part`),
      };
    }
  }
  const smtputf8 = /[^\x00-\x7f]/.test(local);
  if (smtputf8) {
    if (!allowSmtpUtf8)
      return {
        ok: false,
        check: reject('local_utf8_not_allowed', 'a non-ASCII local part needs SMTPUTF8, which is disabled'),
      };
    local = local.normalize('NFC');
  }
  const size = octets(local);
  if (size > maxLocalOctets)
    return { ok: false, check: reject('local_too_long', `the local part is ${size} octets (max ${maxLocalOctets})`) };
  return { ok: true, value: local, smtputf8 };
}

function isDotAtom(value: string, atom: RegExp): boolean {
  if (value === '') return false;
  return value.split('.').every((part) => atom.test(part));
}

function checkDomain(rawDomain: string): Part {
  const fail = (reason: AddressRejectReason, message: string): Part => ({ ok: false, check: reject(reason, message) });
  if (rawDomain.startsWith('[')) {
    // RFC 5321 §4.1.3 IPv6-addr: hex digits, colons and an IPv4 tail only. Node's isIPv6 also takes a
    // zone (`fe80::1%eth0`), which names an interface of the sending host, not a mailbox's host.
    const literal = rawDomain.match(/^\[(?:IPv6:([0-9a-f:.]+)|(\d{1,3}(?:\.\d{1,3}){3}))\]$/i);
    const valid = literal !== null && (literal[1] !== undefined ? isIPv6(literal[1]) : isIPv4(literal[2] ?? ''));
    if (!valid) return fail('domain_literal_invalid', `${rawDomain} is not a valid address literal`);
    return {
      ok: true,
      value: literal[1] !== undefined ? `[IPv6:${literal[1].toLowerCase()}]` : rawDomain,
      smtputf8: false,
    };
  }
  if (isIPv4(rawDomain) || isIPv6(rawDomain))
    return fail('domain_ip_unbracketed', 'an IP address as domain must be written in brackets, e.g. [192.0.2.1]');
  if (octets(rawDomain) > maxDomainOctets)
    return fail('domain_too_long', `the domain is over ${maxDomainOctets} octets`);
  // WHATWG/UTS #46 processing: lower-cases, maps full-width dots, converts U-labels to punycode,
  // and returns '' for what cannot be a host name at all.
  const ascii = domainToASCII(rawDomain);
  if (ascii === '') return fail('invalid_domain', `${rawDomain} is not a valid domain name`);
  if (ascii.length > maxDomainOctets)
    return fail('domain_too_long', `the domain is ${ascii.length} octets (max ${maxDomainOctets})`);
  const labels = ascii.split('.');
  if (labels.length < 2)
    return fail('domain_no_dot', `${rawDomain} has no dot; a full domain is needed, e.g. example.com`);
  for (const label of labels) {
    if (label.length > maxLabelOctets)
      return fail('label_too_long', `a label of ${rawDomain} is ${label.length} octets (max ${maxLabelOctets})`);
    if (!ldhLabel.test(label))
      return fail(
        'invalid_domain',
        `${rawDomain} has an empty label or one with characters other than letters, digits and inner hyphens`,
      );
  }
  const tld = labels[labels.length - 1] ?? '';
  if (!tldShape.test(tld)) return fail('invalid_tld', `.${tld} is not a valid top-level domain`);
  return { ok: true, value: ascii, smtputf8: false };
}
