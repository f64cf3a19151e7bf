// RFC 8058 §3.2: a mail receiver's one-click unsubscribe is an HTTPS POST whose body is the key/value
// pair of the List-Unsubscribe-Post header, "List-Unsubscribe=One-Click", sent as multipart/form-data
// or application/x-www-form-urlencoded (the confirmation page's form sends the same). A POST without
// it is not a one-click unsubscribe (a crawler, a probe): it must not denylist anybody.

const key = 'List-Unsubscribe';
const value = 'One-Click';

/** Whether a POST body (read as text, at most 1 KiB) carries List-Unsubscribe=One-Click. */
export async function isOneClickBody(contentType: string | undefined, body: unknown): Promise<boolean> {
  if (typeof body !== 'string' || body.length === 0) return false;
  if (/^\s*multipart\/form-data\s*;/i.test(contentType ?? '')) {
    // The platform's multipart parser (undici's Response.formData), not a hand-written one.
    try {
      const form = await new Response(body, { headers: { 'content-type': contentType! } }).formData();
      return form.getAll(key).some((field) => typeof field === 'string' && field.trim() === value);
    } catch {
      return false;
    }
  }
  return new URLSearchParams(body.trim()).getAll(key).some((field) => field.trim() === value);
}
