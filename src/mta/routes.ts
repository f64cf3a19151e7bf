import type { RouteConfig } from '../config/schema.ts';

// Static routes override DNS. A route without `*` matches a recipient domain (DNS is skipped) or an
// MX host name exactly; a route with `*` is an MX host pattern applied to the names found in DNS.

export interface RouteTarget {
  host: string;
  port: number;
}

export interface RouteTable {
  /** The route for a recipient domain, when one skips DNS for it. */
  forDomain(domain: string): RouteTarget | undefined;
  /** Where to connect for an MX host name found in DNS, when a route overrides it. */
  forMxHost(mxHost: string): RouteTarget | undefined;
}

export function compileRoutes(routes: readonly RouteConfig[]): RouteTable {
  const exact = new Map<string, RouteTarget>();
  const patterns: { regex: RegExp; target: RouteTarget }[] = [];
  for (const route of routes) {
    const match = normalizeName(route.match);
    const target = { host: route.host, port: route.port };
    if (match.includes('*')) patterns.push({ regex: patternToRegex(match), target });
    else if (!exact.has(match)) exact.set(match, target);
  }
  return {
    forDomain: (domain) => exact.get(normalizeName(domain)),
    forMxHost(mxHost) {
      const name = normalizeName(mxHost);
      const direct = exact.get(name);
      if (direct) return direct;
      return patterns.find((pattern) => pattern.regex.test(name))?.target;
    },
  };
}

/** `*` matches one or more characters, dots included: `*.mx.test` matches `a.b.mx.test`. */
export function patternToRegex(pattern: string): RegExp {
  const escaped = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.+');
  return new RegExp(`^${escaped}$`);
}

function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}
