import { timingSafeEqual } from 'node:crypto';

// What protects the dashboard's forms and pages: a Content-Security-Policy without inline script,
// the same-origin check of every state-changing request, and the CSRF token comparison.

export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

export const securityHeaders: Record<string, string> = {
  'content-security-policy': contentSecurityPolicy,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};

/**
 * Why a state-changing request does not come from this dashboard's own pages, or undefined when it
 * does: its Origin (or, without one, its Referer) must be this server's origin. Browsers send Origin
 * on every cross-site POST; a request with neither header is no browser's cross-site post.
 */
export function crossOriginReason(
  headers: { origin?: string | undefined; referer?: string | undefined },
  ownOrigin: string,
): string | undefined {
  const { origin, referer } = headers;
  if (origin !== undefined && origin !== '') {
    return origin === ownOrigin ? undefined : `the request comes from another origin (${origin.slice(0, 100)})`;
  }
  if (referer !== undefined && referer !== '') {
    let refererOrigin: string;
    try {
      refererOrigin = new URL(referer).origin;
    } catch {
      return 'the request has a malformed Referer';
    }
    return refererOrigin === ownOrigin
      ? undefined
      : `the request comes from another origin (${refererOrigin.slice(0, 100)})`;
  }
  return undefined;
}

/** Constant-time comparison of the CSRF token a request presents with the session's. */
export function csrfMatches(expected: string, presented: unknown): boolean {
  if (typeof presented !== 'string' || presented.length === 0) return false;
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(presented, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A `next` target after signing in: only a path of this dashboard, never another site. */
export function safeNextPath(value: unknown): string {
  if (typeof value !== 'string') return '/ui/deliveries';
  return /^\/ui\/[A-Za-z0-9/_?=&%.+-]*$/.test(value) && !value.startsWith('//') ? value : '/ui/deliveries';
}
