// A small browser-like client for the dashboard tests over real HTTP: it keeps cookies, sends forms
// url-encoded with this dashboard's Origin, and reads the CSRF token a page carries.

export interface WebAnswer {
  status: number;
  headers: Headers;
  text: string;
}

export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]*)"/.exec(html);
  if (!match) throw new Error('no CSRF field in the page');
  return match[1]!;
}

export function createWebClient(baseUrl: string) {
  const cookies = new Map<string, string>();
  const origin = new URL(baseUrl).origin;

  function remember(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair] = line.split(';');
      const index = pair!.indexOf('=');
      const name = pair!.slice(0, index).trim();
      const value = pair!.slice(index + 1).trim();
      if (value === '' || /max-age=0/i.test(line)) cookies.delete(name);
      else cookies.set(name, value);
    }
  }

  function cookieHeader(): string {
    return [...cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  async function request(
    method: 'GET' | 'POST',
    path: string,
    options: { form?: Record<string, string>; headers?: Record<string, string> } = {},
  ): Promise<WebAnswer> {
    const headers: Record<string, string> = { ...(cookies.size > 0 && { cookie: cookieHeader() }) };
    if (method === 'POST') {
      headers.origin = origin;
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    Object.assign(headers, options.headers);
    for (const [name, value] of Object.entries(headers)) if (value === '') delete headers[name];
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      redirect: 'manual',
      ...(options.form && { body: new URLSearchParams(options.form).toString() }),
    });
    remember(response.headers);
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  return {
    cookies,
    get: (path: string, headers?: Record<string, string>) => request('GET', path, { ...(headers && { headers }) }),
    post: (path: string, form: Record<string, string>, headers?: Record<string, string>) =>
      request('POST', path, { form, ...(headers && { headers }) }),
    /** Signs in with an API token; answers the page the sign-in redirected to. */
    async signIn(token: string): Promise<WebAnswer> {
      const page = await request('GET', '/ui/sign-in');
      const answer = await request('POST', '/ui/sign-in', { form: { _csrf: csrfOf(page.text), token } });
      if (answer.status !== 303) throw new Error(`sign-in answered ${answer.status}: ${answer.text.slice(0, 300)}`);
      return request('GET', answer.headers.get('location')!);
    },
  };
}
