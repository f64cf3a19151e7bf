// VERP (variable envelope return path): each message is sent with the envelope sender
// `bounce+<delivery log id>@<bounce domain>`, so a bounce, whatever its format, names the
// delivery log in the address it is delivered to.

const LOG_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function formatVerpAddress(logId: string | number, bounceDomain: string, localPrefix = 'bounce'): string {
  return `${localPrefix}+${logId}@${bounceDomain}`;
}

/** The delivery log id carried by a VERP address, or undefined when the address is not one. */
export function parseVerpAddress(address: string | undefined, localPrefix = 'bounce'): string | undefined {
  if (!address) return undefined;
  const match = /<?([^\s<>@]+)@([^\s<>]+?)>?$/.exec(address.trim());
  if (!match) return undefined;
  const local = match[1]!;
  const prefix = `${localPrefix.toLowerCase()}+`;
  if (!local.toLowerCase().startsWith(prefix)) return undefined;
  const id = local.slice(prefix.length);
  return LOG_ID.test(id) ? id : undefined;
}
