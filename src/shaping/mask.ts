import { compileHostGlob } from '../common/host-glob.ts';

// Host-name masks with `*` (any run of characters, dots included) and `?` (exactly one character),
// compared case-insensitively (RFC 1035 §2.3.3: DNS names are case-insensitive). A mask is
// compiled once; matching is linear in the host and the mask, never a backtracking RegExp
// (common/host-glob.ts: a pack from the deliverability source could otherwise stall the MTA).

export interface HostMask {
  /** The mask as written in the rule pack. */
  readonly source: string;
  /** True for `*` alone: the generic mask that matches every host. */
  readonly matchesEverything: boolean;
  test(host: string): boolean;
  /** test() of a host already normalized (normalizeHost). */
  testNormalized(normalizedHost: string): boolean;
  /**
   * For a mask of `*` then letters only (`*.google.com`; `*` alone: ""), the end a matching host
   * has: rule matching looks these up by the host's ends instead of testing them one by one.
   */
  readonly suffix?: string;
}

const maskCharacters = /^[A-Za-z0-9.*?_-]+$/;

/** Returns an error message when `mask` is not a usable host mask, undefined when it is. */
export function checkMask(mask: string): string | undefined {
  if (mask.length === 0) return 'a mask cannot be empty';
  if (mask.length > 255) return 'a mask is at most 255 characters (the longest DNS name)';
  if (!maskCharacters.test(mask)) return `"${mask}" may only contain letters, digits, ".", "-", "_", "*" and "?"`;
  return undefined;
}

export function compileMask(mask: string): HostMask {
  const problem = checkMask(mask);
  if (problem) throw new Error(problem);
  const normalized = mask.toLowerCase().replace(/\.$/, '');
  const pattern = compileHostGlob(normalized);
  const afterStars = normalized.replace(/^\*+/, '');
  const suffix = afterStars !== normalized && !/[*?]/.test(afterStars) ? afterStars : undefined;
  return {
    source: mask,
    matchesEverything: /^\*+$/.test(normalized),
    ...(suffix !== undefined && { suffix }),
    test: (host) => pattern.test(normalizeHost(host)),
    testNormalized: (normalizedHost) => pattern.test(normalizedHost),
  };
}

/** Lower-case, without the trailing root dot MX answers sometimes carry (`mx.example.com.`). */
export function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
