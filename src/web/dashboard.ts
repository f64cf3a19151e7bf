import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { insertAudit } from '../api/api-store.ts';
import type { AuthLimiter, Presented } from '../api/auth-limiter.ts';
import { roleAllows } from '../api/tokens.ts';
import { statusOf } from '../api/problem.ts';
import { AppError } from '../common/errors.ts';
import type { Herald } from '../main.ts';
import { databaseFailure, databaseFailureDetail } from '../store/database-failure.ts';
import type { ApiRole } from '../store/tables.ts';
import type { WorkflowEngine } from '../workflows/engine.ts';
import { loadAssets } from './assets.ts';
import { createLiveTicks, type LiveTicks } from './live-ticks.ts';
import { registerBouncePages } from './pages/bounce-pages.ts';
import { registerDeliveryPages } from './pages/delivery-pages.ts';
import { registerPlatformPages } from './pages/platform-pages.ts';
import { registerQuarantinePages } from './pages/quarantine-pages.ts';
import { registerSignInPages } from './pages/sign-in-pages.ts';
import { registerWorkflowPages } from './pages/workflow-pages.ts';
import { crossOriginReason, csrfMatches, securityHeaders } from './security.ts';
import { readSession } from './sessions.ts';
import { compileTemplates } from './templates.ts';
import type { PageData, WebContext, WebHandler, WebRouteConfig } from './web-route.ts';

// The dashboard (issue 15, docs/dashboard.md): server-rendered pages under /ui, served by the api
// role's Fastify app. Sessions come from signing in with an API token; every state-changing request
// is origin-checked, CSRF-checked, role-checked and audited like the API's calls.

export const sessionCookie = 'herald_session';

/** The pages of the navigation bar, in order. */
const navigation = [
  { key: 'deliveries', label: 'Deliveries', href: '/ui/deliveries' },
  { key: 'workflows', label: 'Workflows', href: '/ui/workflows' },
  { key: 'quarantine', label: 'Quarantine', href: '/ui/quarantine' },
  { key: 'doctor', label: 'Doctor', href: '/ui/doctor' },
  { key: 'mx', label: 'MX rules', href: '/ui/mx' },
  { key: 'bounces', label: 'Bounces', href: '/ui/bounces' },
  { key: 'database', label: 'Database', href: '/ui/database' },
  { key: 'mid', label: 'Mid-sourcing', href: '/ui/mid' },
];
export const signInCookie = 'herald_signin';

export interface DashboardOptions {
  herald: Herald;
  engine: WorkflowEngine;
  limiter: AuthLimiter;
  /** The delivery page's shared live data (default: 2 s ticks); a test passes its own to count loads. */
  ticks?: LiveTicks;
  /** The API's tracker of work still running after its handler answered (ApiApp.whenIdle waits for it). */
  track(work: Promise<unknown>): void;
}

export interface WebRoutes {
  get(path: string, permission: WebRouteConfig['permission'], handler: WebHandler): void;
  post(path: string, config: Required<WebRouteConfig>, handler: WebHandler): void;
}

function ownOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

export function isTls(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

export function cookieHeader(
  request: FastifyRequest,
  name: string,
  value: string,
  options: { maxAgeSeconds: number },
): string {
  return serializeCookie(name, value, {
    httpOnly: true,
    sameSite: 'strict',
    secure: isTls(request),
    path: '/ui',
    maxAge: options.maxAgeSeconds,
  });
}

export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string' || header.length > 8_192) return undefined;
  return parseCookies(header)[name];
}

export function registerDashboard(app: FastifyInstance, options: DashboardOptions): void {
  const { herald, engine } = options;
  const templates = compileTemplates();
  const assets = loadAssets();
  const ticks = options.ticks ?? createLiveTicks({ herald });

  // The addresses an operator types: the root, and the dashboard's own prefix (a 404 before).
  for (const path of ['/', '/ui', '/ui/']) app.get(path, async (_request, reply) => reply.redirect('/ui/deliveries'));

  app.register(
    async (scope) => {
      // Forms arrive url-encoded; the API outside this scope still takes JSON only.
      scope.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: 64 * 1024 },
        (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
      );

      scope.addHook('onRequest', async (request, reply) => {
        request.receivedAt = performance.now();
        reply.headers(securityHeaders);
        reply.header('cache-control', 'no-store');
      });

      const render = async (
        request: FastifyRequest,
        reply: FastifyReply,
        template: string,
        data: PageData,
        status = 200,
      ): Promise<FastifyReply> => {
        const session = request.webSession;
        const html = await templates.render(template, {
          ...data,
          session: session && { name: session.name, role: session.role },
          csrf: session?.csrfToken ?? '',
          assets: assets.urls,
          navigation,
          canOperate: session !== undefined && roleAllows(session.role, 'operator'),
        });
        return reply.code(status).type('text/html; charset=utf-8').send(html);
      };

      // A refusal or an error as a page, or, to htmx (a live region polling), as a notice to swap
      // in: the whole page used to land inside the page, a second header and navigation included.
      const renderRefused = (
        request: FastifyRequest,
        reply: FastifyReply,
        data: { title: string; status: number; message: string },
      ) => render(request, reply, request.headers['hx-request'] === 'true' ? '_refused' : 'refused', data, data.status);

      const refuse = (
        request: FastifyRequest,
        reply: FastifyReply,
        status: 401 | 403 | 429,
        code: 'AUTH_REQUIRED' | 'FORBIDDEN' | 'RATE_LIMITED',
        message: string,
      ) => {
        request.problemCode = code;
        const title = status === 401 ? 'Not signed in' : status === 403 ? 'Forbidden' : 'Too many attempts';
        return renderRefused(request, reply, { title, status, message });
      };

      // A refused post counts against the API's limiter (by what it presented); past the limit it is
      // answered 429 without being counted or audited again. Undefined: counted, go on refusing it.
      const countRefusedPost = (request: FastifyRequest, reply: FastifyReply, attempt: Presented) => {
        const now = herald.clock.now();
        const wait = options.limiter.blockedFor(request.ip, now, attempt);
        if (wait > 0) {
          reply.header('retry-after', String(Math.ceil(wait / 1000)));
          return refuse(
            request,
            reply,
            429,
            'RATE_LIMITED',
            'Too many refused requests from this address: retry later.',
          );
        }
        options.limiter.recordFailure(request.ip, now, attempt);
        return undefined;
      };

      // Who is calling: before the body is read, so a post without a session is refused (and counted)
      // whatever its body; a malformed or refused body of one was audited, never counted, without end.
      scope.addHook('onRequest', async (request, reply) => {
        const config = request.routeOptions.config.web;
        if (!config) return;
        const presented = readCookie(request, sessionCookie);
        if (presented !== undefined) {
          const session = await readSession(herald.store, presented, herald.clock.now());
          if (session) request.webSession = session;
        }
        if (config.permission === 'public') return;
        const session = request.webSession;
        if (!session && request.method !== 'GET') {
          // A post without a session is a failed authentication: each is audited, so a client
          // repeating them is stopped by the API's limiter (and no longer audited once blocked).
          // Without a cookie it is what any web page can send (SameSite keeps the cookie home):
          // counted apart, it blocks no request that carries a credential.
          const limited = countRefusedPost(request, reply, presented === undefined ? 'nothing' : 'credential');
          if (limited) return limited;
        }
        if (!session)
          return refuse(
            request,
            reply,
            401,
            'AUTH_REQUIRED',
            presented === undefined
              ? 'Sign in with an API token to see this page.'
              : 'Your session has expired or was closed. Sign in again.',
          );
      });

      // May they: the origin, the form's CSRF token and the role, once the body is in.
      scope.addHook('preHandler', async (request, reply) => {
        const config = request.routeOptions.config.web;
        const session = request.webSession;
        if (!config || config.permission === 'public' || !session) return;
        if (request.method !== 'GET') {
          const crossOrigin = crossOriginReason(
            { origin: request.headers.origin, referer: request.headers.referer },
            ownOrigin(request),
          );
          if (crossOrigin) return refuse(request, reply, 403, 'FORBIDDEN', `Refused: ${crossOrigin}.`);
          const body = (request.body ?? {}) as Record<string, unknown>;
          const presentedCsrf = body._csrf ?? request.headers['x-csrf-token'];
          if (!csrfMatches(session.csrfToken, presentedCsrf))
            return refuse(
              request,
              reply,
              403,
              'FORBIDDEN',
              'Refused: the form carries no valid CSRF token (reload the page and try again).',
            );
        }
        if (!roleAllows(session.role, config.permission))
          return refuse(
            request,
            reply,
            403,
            'FORBIDDEN',
            `This needs the ${config.permission} role; you are signed in as ${session.role}.`,
          );
      });

      // The server's time for the page (browsers' developer tools show it; bench/dashboard.ts reads it).
      scope.addHook('onSend', async (request, reply, payload) => {
        reply.header('server-timing', `app;dur=${(performance.now() - (request.receivedAt ?? 0)).toFixed(1)}`);
        return payload;
      });

      // Every state-changing request, refused ones included, like the API's audit.
      scope.addHook('onSend', async (request, reply, payload) => {
        const config = request.routeOptions.config.web;
        if (!config?.audit) return payload;
        // A blocked client is not audited request by request: the failures that blocked it were.
        if (request.problemCode === 'RATE_LIMITED') return payload;
        try {
          await insertAudit(herald.store, {
            at: herald.clock.now(),
            token_id: request.webSession?.tokenId ?? null,
            role: request.webSession?.role ?? null,
            method: request.method,
            route: `web.${config.audit}`,
            path: request.url.split('?')[0]!.slice(0, 500),
            status: reply.statusCode,
            error_code: request.problemCode ?? null,
            client: request.ip,
          });
        } catch (error) {
          herald.logger.error({ err: error, route: config.audit }, 'dashboard audit could not be written');
        }
        return payload;
      });

      scope.setNotFoundHandler(async (request, reply) => {
        const presented = readCookie(request, sessionCookie);
        if (presented !== undefined) {
          const session = await readSession(herald.store, presented, herald.clock.now());
          if (session) request.webSession = session;
        }
        return renderRefused(request, reply, { title: 'Not found', status: 404, message: 'No such page.' });
      });

      scope.setErrorHandler(async (error: Error & { statusCode?: number; code?: string }, request, reply) => {
        // The database down, stuck or full (refused, reset, shutting down, not answering): every
        // page failed with "Internal error"; now it says so (503), without the database's address
        // (no session is needed to see this page), which the log has.
        const databaseCode = databaseFailure(error, herald.store);
        if (databaseCode) {
          herald.logger.error(
            { err: error, url: request.url.slice(0, 200) },
            'dashboard page failed: database unavailable',
          );
          request.problemCode = databaseCode;
          const detail = databaseFailureDetail(databaseCode);
          const message = `${detail.charAt(0).toUpperCase()}${detail.slice(1)} (${databaseCode}).`;
          return renderRefused(request, reply, { title: 'Database unavailable', status: 503, message });
        }
        const known = error instanceof AppError ? error : undefined;
        // The API's statuses (one table, api/problem.ts): a refused rule is 422 here as there, not a crash.
        const status = known
          ? statusOf(known.code)
          : error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500
            ? error.statusCode
            : 500;
        if (status === 500)
          herald.logger.error({ err: error, url: request.url.slice(0, 200) }, 'dashboard page failed');
        // A body that does not parse, posted without a session (to the public sign-in form): counted
        // like a forged form, so a client repeating it is stopped instead of audited without end.
        if (!known && status < 500 && !request.webSession && request.routeOptions.config.web?.audit) {
          const limited = countRefusedPost(request, reply, 'nothing');
          if (limited) return limited;
        }
        if (known) request.problemCode = known.code;
        const message =
          status === 500 ? 'Internal error: the server log has the details.' : error.message.slice(0, 500);
        const title =
          status === 404
            ? 'Not found'
            : status === 409
              ? 'Not possible now'
              : status === 422
                ? 'Refused'
                : status >= 500
                  ? 'Error'
                  : 'Bad request';
        return renderRefused(request, reply, { title, status, message });
      });

      for (const [url, asset] of assets.byUrl) {
        scope.get(url.slice('/ui'.length), async (_request, reply) =>
          reply.header('cache-control', 'public, max-age=31536000, immutable').type(asset.contentType).send(asset.body),
        );
      }

      const contextOf = (request: FastifyRequest, reply: FastifyReply): WebContext => ({
        herald,
        engine,
        session: request.webSession,
        request,
        reply,
        render: (template, data, status) => render(request, reply, template, data, status),
        may: (needed: ApiRole) => request.webSession !== undefined && roleAllows(request.webSession.role, needed),
        track: options.track,
      });
      const routes: WebRoutes = {
        get: (path, permission, handler) =>
          scope.get(path, { config: { web: { permission } } }, (request, reply) => handler(contextOf(request, reply))),
        post: (path, config, handler) =>
          scope.post(path, { config: { web: config } }, (request, reply) => handler(contextOf(request, reply))),
      };
      registerSignInPages(routes, options);
      registerDeliveryPages(routes, { ticks });
      registerWorkflowPages(routes);
      registerQuarantinePages(routes);
      registerPlatformPages(routes, { ticks });
      registerBouncePages(routes);
    },
    { prefix: '/ui' },
  );
}
