import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

// VERP (variable envelope return path): each message is sent with the envelope sender
// `bounce+<delivery log id>-<mac>@<bounce domain>`, so a bounce, whatever its format, names the
// delivery log in the address it is delivered to. Log ids are sequential: without the MAC anyone
// could send a forged report about any log. The MAC is an HMAC-SHA256 over the log id, keyed by a
// key derived (HKDF, RFC 5869) from each tracking key, so VERP keys rotate with the tracking keys:
// the newest signs, older ones verify until a newer one is `graceMs` old. It is lower-case hex:
// mail systems may change the case of a local part (RFC 5321 §2.4 says they should not).

const LOG_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** 20 hex digits: 80 bits, each guess costing an SMTP transaction. */
const macHexLength = 20;
const SIGNED = /^(\d{1,15})-([0-9a-f]{20})$/;

export interface VerpKey {
  id: string;
  secret: string;
  /** Epoch ms. */
  createdAt: number;
}

export interface VerpSigner {
  /** `<prefix>+<logId>-<mac>@<bounceDomain>`. */
  address(logId: number, bounceDomain: string): string;
  /**
   * The log id of a signed VERP local-part suffix (what follows `<prefix>+`), or undefined when it
   * is unsigned, badly signed or signed by a key retired at `now`.
   */
  verify(suffix: string, now: number): number | undefined;
}

export interface VerpSignerOptions {
  keys: readonly VerpKey[];
  /** How long a key still verifies after a newer key was created. */
  graceMs: number;
  localPrefix?: string;
}

export function createVerpSigner(options: VerpSignerOptions): VerpSigner {
  if (options.keys.length === 0) throw new Error('VERP signing needs at least one key');
  const prefix = options.localPrefix ?? 'bounce';
  const sorted = [...options.keys].sort((a, b) => a.createdAt - b.createdAt);
  const entries = sorted.map((key, i) => ({
    secret: Buffer.from(hkdfSync('sha256', Buffer.from(key.secret, 'utf8'), Buffer.alloc(0), 'herald verp v1', 32)),
    retiredAt: sorted[i + 1] ? sorted[i + 1]!.createdAt + options.graceMs : Number.POSITIVE_INFINITY,
  }));
  const signing = entries[entries.length - 1]!;
  const macOf = (secret: Buffer, logId: string): Buffer =>
    Buffer.from(createHmac('sha256', secret).update(`verp:${logId}`).digest('hex').slice(0, macHexLength), 'ascii');
  return {
    address(logId, bounceDomain) {
      return `${prefix}+${logId}-${macOf(signing.secret, String(logId)).toString('ascii')}@${bounceDomain}`;
    },
    verify(suffix, now) {
      const match = SIGNED.exec(suffix.toLowerCase());
      if (!match) return undefined;
      const id = match[1]!;
      const given = Buffer.from(match[2]!, 'ascii');
      for (const entry of entries) {
        if (entry.retiredAt <= now) continue;
        if (timingSafeEqual(macOf(entry.secret, id), given)) return Number(id);
      }
      return undefined;
    },
  };
}

export function formatVerpAddress(logId: string | number, bounceDomain: string, localPrefix = 'bounce'): string {
  return `${localPrefix}+${logId}@${bounceDomain}`;
}

/** Longer than any SMTP path, with room for a display name and angle brackets around it. */
const MAX_PATH_CHARS = 512;

/**
 * What follows `<prefix>+` in a VERP address (a log id, signed or not: `verify` decides), or
 * undefined when the address is not one.
 */
export function parseVerpAddress(address: string | undefined, localPrefix = 'bounce'): string | undefined {
  // An SMTP path is at most 256 octets (RFC 5321 §4.5.3.1.3), and the pattern below tries every
  // start of a run: a sender's 16 KiB To cost 0.27 s.
  if (!address || address.length > MAX_PATH_CHARS) return undefined;
  const match = /<?([^\s<>@]+)@([^\s<>]+?)>?$/.exec(address.trim());
  if (!match) return undefined;
  const local = match[1]!;
  const prefix = `${localPrefix.toLowerCase()}+`;
  if (!local.toLowerCase().startsWith(prefix)) return undefined;
  const id = local.slice(prefix.length);
  return LOG_ID.test(id) ? id : undefined;
}
