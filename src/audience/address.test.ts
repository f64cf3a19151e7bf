import { describe, expect, it } from 'vitest';
import { createAddressValidator, validateAddress } from './address.ts';

const accepted: Array<[input: string, email: string, smtputf8?: boolean]> = [
  ['bob@example.com', 'bob@example.com'],
  ['  bob@example.com\t', 'bob@example.com'],
  ['Bob.Smith@Example.COM', 'Bob.Smith@example.com'],
  ['first.last+tag@sub.example.co.uk', 'first.last+tag@sub.example.co.uk'],
  ["o'connor@example.ie", "o'connor@example.ie"],
  ['user_name-1@example-mail.com', 'user_name-1@example-mail.com'],
  ["!#$%&'*+-/=?^_`{|}~@example.org", "!#$%&'*+-/=?^_`{|}~@example.org"],
  ['x@a.io', 'x@a.io'],
  ['1234567890@example.com', '1234567890@example.com'],
  ['bob@mail.example.xn--p1ai', 'bob@mail.example.xn--p1ai'],
  // IDN domains are stored as punycode, lower-cased (full-width dot mapped by UTS #46).
  ['bob@Bücher.DE', 'bob@xn--bcher-kva.de'],
  ['bob@münchen。de', 'bob@xn--mnchen-3ya.de'],
  ['info@例え.テスト', 'info@xn--r8jz45g.xn--zckzah'],
  ['ivan@пример.рф', 'ivan@xn--e1afmkfd.xn--p1ai'],
  ['bob@xn--bcher-kva.de', 'bob@xn--bcher-kva.de'],
  // Quoted local parts: kept quoted unless they are plain dot-atoms.
  ['"bob"@example.com', 'bob@example.com'],
  ['"john smith"@example.com', '"john smith"@example.com'],
  ['"a@b"@example.com', '"a@b"@example.com'],
  ['"quote\\"d"@example.com', '"quote\\"d"@example.com'],
  // One spelling per mailbox: a quoted-pair is kept only where RFC 5321 §4.1.2 needs one (" and \\).
  ['"john\\ smith"@example.com', '"john smith"@example.com'],
  ['"a\\@b"@example.com', '"a@b"@example.com'],
  ['"back\\\\slash"@example.com', '"back\\\\slash"@example.com'],
  ['"b\\ob"@example.com', 'bob@example.com'],
  // Address literals.
  ['postmaster@[192.0.2.1]', 'postmaster@[192.0.2.1]'],
  ['postmaster@[IPv6:2001:DB8::1]', 'postmaster@[IPv6:2001:db8::1]'],
  // RFC 6531 SMTPUTF8 local parts, NFC-normalized.
  ['用户@例子.广告', '用户@xn--fsqu00a.xn--4rr70v', true],
  ['jos\u0065\u0301@example.com', 'jos\u00e9@example.com', true],
  [`${'a'.repeat(64)}@example.com`, `${'a'.repeat(64)}@example.com`],
];

const rejected: Array<[input: string, reason: string]> = [
  ['', 'empty'],
  ['   ', 'empty'],
  ['bob.example.com', 'missing_at'],
  ['@example.com', 'local_empty'],
  ['bob@', 'domain_empty'],
  ['Bob Smith <bob@example.com>', 'display_name'],
  ['<bob@example.com>', 'display_name'],
  ['bob smith@example.com', 'local_invalid_char'],
  ['bob@@example.com', 'local_invalid_char'],
  ['a@b@example.com', 'local_invalid_char'],
  ['bob,smith@example.com', 'local_invalid_char'],
  ['bob\r\nBcc: x@evil.test@example.com', 'local_invalid_char'],
  ['mailto:bob@example.com', 'local_invalid_char'],
  // Characters that show nothing, or make the address display as another: bidi override, zero-width
  // space and joiner, BOM, a C1 control, a no-break space, private use.
  ['moc.elpmaxe\u202e@example.com', 'local_invalid_char'],
  ['pay\u200bpal@example.com', 'local_invalid_char'],
  ['pay\u200dpal@example.com', 'local_invalid_char'],
  ['bo\ufeffb@example.com', 'local_invalid_char'],
  ['bob\u0085@example.com', 'local_invalid_char'],
  ['bob\u00a0smith@example.com', 'local_invalid_char'],
  ['bob\ue000@example.com', 'local_invalid_char'],
  ['"pay\u200bpal"@example.com', 'local_quoted_invalid'],
  ['.bob@example.com', 'local_dots'],
  ['bob.@example.com', 'local_dots'],
  ['bo..b@example.com', 'local_dots'],
  ['"unclosed@example.com', 'local_quoted_invalid'],
  ['"a"b"@example.com', 'local_quoted_invalid'],
  [`${'a'.repeat(65)}@example.com`, 'local_too_long'],
  [`${'é'.repeat(33)}@example.com`, 'local_too_long'],
  ['bob@localhost', 'domain_no_dot'],
  ['bob@example', 'domain_no_dot'],
  ['bob@192.168.0.1', 'domain_ip_unbracketed'],
  ['bob@[192.168.0.300]', 'domain_literal_invalid'],
  ['bob@[IPv6:zz::1]', 'domain_literal_invalid'],
  ['bob@[IPv6:fe80::1%eth0]', 'domain_literal_invalid'],
  ['bob@[example.com]', 'domain_literal_invalid'],
  ['bob@exa mple.com', 'invalid_domain'],
  ['bob@exa_mple.com', 'invalid_domain'],
  ['bob@example..com', 'invalid_domain'],
  ['bob@.example.com', 'invalid_domain'],
  ['bob@example.com.', 'invalid_domain'],
  ['bob@-example.com', 'invalid_domain'],
  ['bob@example-.com', 'invalid_domain'],
  ['bob@example.com:25', 'invalid_domain'],
  ['bob@xn--zz.com', 'invalid_domain'],
  ['bob@example.c', 'invalid_tld'],
  ['bob@example.c0m', 'invalid_tld'],
  ['bob@example.123', 'invalid_domain'],
  [`bob@${'a'.repeat(64)}.com`, 'label_too_long'],
  [`bob@${`${'a'.repeat(60)}.`.repeat(5)}com`, 'domain_too_long'],
  [`${'a'.repeat(64)}@${`${'b'.repeat(60)}.`.repeat(4)}com`, 'too_long'],
  ['x'.repeat(2_000), 'too_long'],
];

describe('validateAddress', () => {
  it.each(accepted)('accepts %j as %j', (input, email, smtputf8 = false) => {
    const check = validateAddress(input);
    expect(check).toMatchObject({ ok: true, email, smtputf8 });
    if (check.ok) expect(`${check.local}@${check.domain}`).toBe(email);
  });

  it.each(rejected)('rejects %j with %s', (input, reason) => {
    const check = validateAddress(input);
    expect(check).toMatchObject({ ok: false, reason });
    if (!check.ok) expect(check.message.length).toBeGreaterThan(5);
  });

  it('gives the same answers through the domain-caching validator, twice', () => {
    const cached = createAddressValidator({}, 4);
    for (let round = 0; round < 2; round++) {
      for (const [input] of [...accepted, ...rejected]) expect(cached(input)).toEqual(validateAddress(input));
    }
  });

  it('rejects UTF-8 local parts when SMTPUTF8 is disabled, but not IDN domains', () => {
    expect(validateAddress('用户@example.com', { allowSmtpUtf8: false })).toMatchObject({
      ok: false,
      reason: 'local_utf8_not_allowed',
    });
    expect(validateAddress('bob@Bücher.de', { allowSmtpUtf8: false })).toMatchObject({
      ok: true,
      email: 'bob@xn--bcher-kva.de',
    });
  });

  it('names the offending character', () => {
    const check = validateAddress('bob;smith@example.com');
    expect(check.ok === false && check.message).toContain('";"');
    const invisible = validateAddress('pay\u200bpal@example.com');
    expect(invisible.ok === false && invisible.message).toContain('character U+200B is not allowed');
  });
});
