import { isIP } from 'node:net';
import { hostname } from 'node:os';

// DNS rebinding: a page at http://evil.example:8080 whose name the attacker re-resolves to
// 127.0.0.1 reaches an API bound on loopback from the operator's own browser, as the page's own
// origin, so it reads what needs no token (/metrics, /readyz, the sign-in form) and can post to the
// sign-in form. Its requests carry `Host: evil.example:8080`: the API answers only host names it was
// told it has. An IP literal cannot be rebound (the browser connects to that very address), so any
// is accepted; so is `localhost`. The metrics port (metrics/server.ts) answers the same way, with
// metrics.host and metrics.allowedHosts.

/**
 * The host names the API answers to: `localhost`, the machine's own name (what an operator types:
 * `http://herald-prod:8080`; no outsider can make a browser resolve it), api.host when it is a name,
 * and api.allowedHosts.
 */
export function allowedHostNames(
  config: { host: string; allowedHosts: readonly string[] },
  machineName = hostname(),
): ReadonlySet<string> {
  const names = new Set([
    'localhost',
    machineName.toLowerCase(),
    ...config.allowedHosts.map((name) => name.toLowerCase()),
  ]);
  if (isIP(config.host) === 0) names.add(config.host.toLowerCase());
  return names;
}

/**
 * Why a request's host (its Host header, or X-Forwarded-Host from a trusted proxy) is not one this
 * server answers to, or undefined when it is. A request without any (HTTP/1.0) comes from no browser.
 * `setting`: the configuration key that adds names, named in the refusal.
 */
export function hostRefusal(
  host: string,
  allowed: ReadonlySet<string>,
  setting = 'api.allowedHosts',
): string | undefined {
  if (host === '' || allowed.has('*')) return undefined;
  let name: string;
  try {
    name = new URL(`http://${host}`).hostname;
  } catch {
    return `the Host header ${JSON.stringify(host.slice(0, 100))} is malformed`;
  }
  const bare = name.startsWith('[') ? name.slice(1, -1) : name;
  if (isIP(bare) !== 0 || allowed.has(name)) return undefined;
  return (
    `this server does not answer to the host name ${name.slice(0, 100)} (a protection against DNS rebinding): ` +
    `open it by its address or localhost, or add the name to ${setting}`
  );
}
