// URLs as they may be shown: logs, errors, `config show`, the doctor.

/** Query parameters that carry credentials (`?password=`, `?access_token=`, `api_key=`, `sig=`…). */
export const secretParameterNames = /secret|pass(?:word|wd)?|pwd|token|key|sig(?:nature)?|auth|credential|session/i;

/** Removes the password (and credential query parameters) from a connection URL before it is shown anywhere. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    // libpq and most drivers also read credentials from the query string.
    for (const name of [...parsed.searchParams.keys()])
      if (secretParameterNames.test(name)) parsed.searchParams.set(name, '***');
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}
