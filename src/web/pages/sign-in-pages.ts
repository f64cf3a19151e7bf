import { authenticateToken, findLiveToken } from '../../api/tokens.ts';
import {
  cookieHeader,
  readCookie,
  sessionCookie,
  signInCookie,
  type DashboardOptions,
  type WebRoutes,
} from '../dashboard.ts';
import { crossOriginReason, csrfMatches, safeNextPath } from '../security.ts';
import { closeSession, openSession, randomSecret, redeemSignInCode, signInCodePrefix } from '../sessions.ts';
import type { WebContext } from '../web-route.ts';

// Signing in with an API token (or a one-time sign-in code made for one: `herald demo
// --keep-running` prints one) and out. Before a session exists, the sign-in form is protected by a
// double-submit token: a random value in an HttpOnly, SameSite=Strict cookie and in the form.

const signInCookieSeconds = 3_600;

async function showSignIn(context: WebContext, status: number, error?: string) {
  const token = randomSecret();
  context.reply.header(
    'set-cookie',
    cookieHeader(context.request, signInCookie, token, { maxAgeSeconds: signInCookieSeconds }),
  );
  const query = context.request.query as Record<string, unknown>;
  const body = (context.request.body ?? {}) as Record<string, unknown>;
  return context.render(
    'sign-in',
    { title: 'Sign in', signInCsrf: token, next: safeNextPath(body.next ?? query.next), error },
    status,
  );
}

export function registerSignInPages(routes: WebRoutes, options: DashboardOptions): void {
  const { herald, limiter } = options;

  routes.get('/sign-in', 'public', async (context) => {
    if (context.session) return context.reply.redirect('/ui/deliveries', 303);
    return showSignIn(context, 200);
  });

  routes.post('/sign-in', { permission: 'public', audit: 'signIn' }, async (context) => {
    const { request, reply } = context;
    const body = (request.body ?? {}) as Record<string, unknown>;
    const crossOrigin = crossOriginReason(
      { origin: request.headers.origin, referer: request.headers.referer },
      `${request.protocol}://${request.host}`,
    );
    const expected = readCookie(request, signInCookie);
    const now = herald.clock.now();
    // A form not sent by this page is what any web site can post here: counted apart from wrong
    // tokens, so forged forms never stop the operator's own sign-in (auth-limiter.ts).
    const forged = crossOrigin !== undefined || expected === undefined || !csrfMatches(expected, body._csrf);
    const attempt = forged ? 'nothing' : 'credential';
    const wait = limiter.blockedFor(request.ip, now, attempt);
    if (wait > 0) {
      request.problemCode = 'RATE_LIMITED';
      reply.header('retry-after', String(Math.ceil(wait / 1000)));
      return showSignIn(context, 429, 'Too many failed sign-ins from this address: retry later.');
    }
    if (forged) {
      // Audited like every refused sign-in: counted, so a client repeating it is stopped.
      limiter.recordFailure(request.ip, now, attempt);
      request.problemCode = 'FORBIDDEN';
      return showSignIn(
        context,
        403,
        crossOrigin ? `Refused: ${crossOrigin}.` : 'The sign-in form expired or was not sent by this page: try again.',
      );
    }
    const presented = typeof body.token === 'string' ? body.token.trim() : '';
    const row = presented === '' ? undefined : await tokenOf(herald.store, presented.slice(0, 200), now);
    if (!row) {
      // An empty token counts too: the refusal is audited, and a client re-posting the form it is
      // given each time wrote an audit row per request without end.
      limiter.recordFailure(request.ip, now, attempt);
      request.problemCode = 'AUTH_REQUIRED';
      return showSignIn(
        context,
        401,
        presented === ''
          ? 'Enter an API token (herald tokens create).'
          : 'This token or code is unknown, revoked, expired, already used or malformed.',
      );
    }
    const lifetimeMs = Math.round(herald.config.api.sessionHours * 3_600_000);
    const session = await openSession(herald.store, row.token_id, { now, lifetimeMs });
    request.webSession = {
      sessionId: 0,
      tokenId: row.token_id,
      name: row.name,
      role: row.role,
      csrfToken: session.csrfToken,
      expiresAt: session.expiresAt,
    };
    reply.header('set-cookie', [
      cookieHeader(request, sessionCookie, session.sessionId, { maxAgeSeconds: Math.floor(lifetimeMs / 1000) }),
      cookieHeader(request, signInCookie, '', { maxAgeSeconds: 0 }),
    ]);
    return reply.redirect(safeNextPath(body.next), 303);
  });

  routes.post('/sign-out', { permission: 'viewer', audit: 'signOut' }, async ({ request, reply }) => {
    const presented = readCookie(request, sessionCookie);
    if (presented !== undefined) await closeSession(herald.store, presented);
    reply.header('set-cookie', cookieHeader(request, sessionCookie, '', { maxAgeSeconds: 0 }));
    return reply.redirect('/ui/sign-in', 303);
  });
}

/** The live token a presented API token, or one-time code, signs in as; a code is used up here. */
async function tokenOf(store: DashboardOptions['herald']['store'], presented: string, now: number) {
  if (!presented.startsWith(signInCodePrefix)) return authenticateToken(store, presented);
  const tokenId = await redeemSignInCode(store, presented, now);
  return tokenId === undefined ? undefined : findLiveToken(store, tokenId);
}
