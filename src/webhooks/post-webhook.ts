import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createCheckedLookup, type DestinationPolicy, literalAddress, type ResolveHost } from './destinations.ts';

// One webhook POST: the status of the answer, or why there is none. The address is checked against
// the destination policy where the socket gets it (the request's lookup, or the URL's literal
// address), so what was checked is what is connected to: a name that resolves to a denied address,
// or that changes its answer between a check and the connection (DNS rebinding), is refused. The
// answer's body is never read (an endless one neither holds the dispatcher nor fills memory) and
// redirects are never followed. The deadline covers the whole exchange.

export interface WebhookRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** Aborted when the dispatcher stops: the request is dropped, neither delivered nor failed. */
  signal?: AbortSignal;
}

export type WebhookAnswer =
  | { kind: 'answered'; status: number }
  | { kind: 'failed'; error: string }
  | { kind: 'aborted' };

export type PostWebhook = (request: WebhookRequest) => Promise<WebhookAnswer>;

export type { ResolveHost } from './destinations.ts';

export function createWebhookPoster(options: { policy: DestinationPolicy; resolve?: ResolveHost }): PostWebhook {
  const { policy } = options;

  const lookup = createCheckedLookup(policy, options.resolve);

  return (request) =>
    new Promise<WebhookAnswer>((settle) => {
      const url = new URL(request.url);
      // Refused at creation since; one stored before would send them as Basic authentication.
      if (url.username || url.password)
        return settle({
          kind: 'failed',
          error: `${request.url}: a user name or password in the URL is never sent; subscribe the URL without it`,
        });
      // A literal address never goes through lookup.
      const literal = literalAddress(url);
      const refused = literal === undefined ? undefined : policy.refusal(literal);
      if (refused) return settle({ kind: 'failed', error: `destination refused: ${refused}` });
      if (request.signal?.aborted) return settle({ kind: 'aborted' });
      let done = false;
      const abort = () => finish({ kind: 'aborted' });
      const finish = (answer: WebhookAnswer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', abort);
        outgoing.destroy();
        settle(answer);
      };
      const requestOptions: RequestOptions = {
        method: 'POST',
        headers: { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) },
        lookup,
        agent: false,
      };
      const outgoing = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, requestOptions, (response) =>
        finish({ kind: 'answered', status: response.statusCode ?? 0 }),
      );
      const timer = setTimeout(
        () => finish({ kind: 'failed', error: `no answer within webhooks.timeoutMs (${request.timeoutMs} ms)` }),
        request.timeoutMs,
      );
      outgoing.on('error', (error: NodeJS.ErrnoException) =>
        finish({
          kind: 'failed',
          error: error.code === 'DESTINATION_DENIED' ? `destination refused: ${error.message}` : describe(error),
        }),
      );
      request.signal?.addEventListener('abort', abort, { once: true });
      outgoing.end(request.body);
    });
}

function describe(error: NodeJS.ErrnoException): string {
  return error.code && !error.message.includes(error.code) ? `${error.code} ${error.message}` : error.message;
}
