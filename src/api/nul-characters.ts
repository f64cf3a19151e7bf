// PostgreSQL text cannot hold U+0000 ("invalid byte sequence for encoding UTF8: 0x00"): a query
// parameter, path segment or body string carrying one reached the database and came back as
// 500 INTERNAL with a stack in the log (on SQLite it was stored or matched as is). No Herald value
// (name, address, domain, note, template) has a reason to contain one: refused as input instead.

/** True when the raw request URL encodes a NUL character anywhere (path or query). */
export function urlCarriesNul(url: string): boolean {
  return /%00/.test(url);
}

/** True when any string (or key) of a parsed body contains U+0000. Iterative: bodies may nest deeply. */
export function bodyCarriesNul(body: unknown): boolean {
  const pending: unknown[] = [body];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return true;
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes('\u0000')) return true;
        pending.push(item);
      }
    }
  }
  return false;
}
