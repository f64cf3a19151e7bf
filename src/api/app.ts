import Ajv, { type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { AppError, type ErrorCode } from '../common/errors.ts';
import type { Herald } from '../main.ts';
import { createWorkflowEngine, type WorkflowEngine } from '../workflows/engine.ts';
import { manualTicker } from '../workflows/ticker.ts';
import { addMetricsRoute } from '../metrics/server.ts';
import { registerDashboard } from '../web/dashboard.ts';
import { createLiveTicks, type LiveTicks } from '../web/live-ticks.ts';
import { allowedHostNames, hostRefusal } from './allowed-hosts.ts';
import { insertAudit, touchToken } from './api-store.ts';
import { answerWithin, databaseFailure, databaseFailureDetail } from '../store/database-failure.ts';
import { createAuthLimiter, type AuthLimiter } from './auth-limiter.ts';
import { problem, type FieldError } from './problem.ts';
import { changesState, type AnyRoute, type ApiContext, type Caller } from './route.ts';
import { routes as defaultRoutes } from './routes.ts';
import { emptyQuery } from './schemas.ts';
import { bodyCarriesNul, urlCarriesNul } from './nul-characters.ts';
import { authenticateToken, roleAllows } from './tokens.ts';

// The API's Fastify app, generated from the routes table: authentication and roles before the body
// is read, validation with field paths, problem+json errors, and an audit row for every
// state-changing call. Tests call it without a port (`app.inject`) or listen on port 0.

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
    problemCode?: ErrorCode;
    /** Closes the connection if the body is not in within api.bodyTimeoutMs (docs/api.md). */
    bodyDeadline?: NodeJS.Timeout;
  }
  interface FastifyContextConfig {
    spec?: AnyRoute;
  }
}

export interface ApiAppOptions {
  herald: Herald;
  /** Default: an engine of this process that schedules nothing (runs, pauses, status only). */
  engine?: WorkflowEngine;
  limiter?: AuthLimiter;
  routes?: readonly AnyRoute[];
  /** The dashboard's shared live data (docs/dashboard.md); default: one of this app's own. */
  liveTicks?: LiveTicks;
  /** PostgreSQL: how long the token lookup and the audit row of a request wait for the database (then 503, or logged). */
  databaseDeadlineMs?: number;
}

export interface ApiApp {
  app: FastifyInstance;
  /** Resolves when the work handlers started (CSV imports) has finished. */
  whenIdle(): Promise<void>;
}

const touchEveryMs = 60_000;
/** The token lookup's and the audit row's wait for PostgreSQL (docs/api.md). */
const defaultDatabaseDeadlineMs = 5_000;
/** Retry-After of a 503 for a database that is down or stuck (docs/api.md). */
const databaseRetryAfterSeconds = 5;

function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0]!.slice(0, 500);
}

function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  code: ErrorCode,
  detail: string,
  options: { status?: number; errors?: FieldError[] } = {},
): FastifyReply {
  const body = problem(code, detail, pathOf(request), options);
  request.problemCode = code;
  return reply.code(body.status).type('application/problem+json').send(body);
}

/** Ajv errors as JSON pointers into the request: /body/name, /query/limit, /params/id. */
function fieldErrors(part: string, errors: readonly Partial<ErrorObject>[]): FieldError[] {
  const prefix = `/${part === 'querystring' ? 'query' : part}`;
  return errors.map((error) => {
    const params = (error.params ?? {}) as { missingProperty?: string; additionalProperty?: string };
    const at = error.instancePath ?? '';
    if (params.missingProperty) return { path: `${prefix}${at}/${params.missingProperty}`, message: 'is required' };
    if (params.additionalProperty)
      return { path: `${prefix}${at}/${params.additionalProperty}`, message: 'unknown field' };
    return { path: `${prefix}${at}`, message: error.message ?? 'is invalid' };
  });
}

function compilers() {
  // Query strings and path parameters are text: numbers and booleans are coerced. A JSON body is
  // typed already: a string where a number belongs is an error, not silently converted.
  const make = (coerce: boolean) =>
    addFormats.default(
      new Ajv.default({
        coerceTypes: coerce ? 'array' : false,
        useDefaults: true,
        removeAdditional: false,
        allErrors: true,
        strict: false,
      }),
    );
  return { text: make(true), json: make(false) };
}

export function buildApiApp(options: ApiAppOptions): ApiApp {
  const { herald } = options;
  const config = herald.config.api;
  const engine = options.engine ?? createWorkflowEngine({ ...herald, ticker: manualTicker });
  const limiter =
    options.limiter ??
    createAuthLimiter({
      failuresPerWindow: config.authFailuresPerWindow,
      windowMs: config.authFailureWindowSeconds * 1000,
      ipv6PrefixLength: config.ipv6ClientPrefixLength,
    });
  const routes = options.routes ?? defaultRoutes;
  // PostgreSQL only: a network between can go silent. SQLite is a local file, whose long statements
  // (a VACUUM of `herald db maintain`) are waited for rather than called unreachable.
  const databaseDeadlineMs =
    herald.store.dialect === 'postgres' ? (options.databaseDeadlineMs ?? defaultDatabaseDeadlineMs) : undefined;
  // The dashboard's shared loads; the API's doctor routes use its doctor runs too.
  const ticks = options.liveTicks ?? createLiveTicks({ herald });
  const inFlight = new Set<Promise<unknown>>();
  const touched = new Map<string, number>();
  const track = (work: Promise<unknown>) => {
    inFlight.add(work);
    work.finally(() => inFlight.delete(work));
  };

  const app = Fastify({
    logger: false,
    bodyLimit: config.maxBodyBytes,
    return503OnClosing: true,
    routerOptions: { maxParamLength: 400 },
    // Behind the TLS proxy docs/api.md asks for, the request's protocol, host and client address are
    // the forwarded ones, from the proxies named only (anyone else could forge the headers).
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
  });
  const ajv = compilers();
  app.setValidatorCompiler(({ schema, httpPart }) => {
    if (httpPart !== 'body') return ajv.text.compile(schema);
    // A body whose fields are all optional may be left out altogether (`curl -X POST …/release`).
    const validate = ajv.json.compile(schema);
    if (((schema as { required?: string[] }).required ?? []).length > 0) return validate;
    const optional = (data: unknown) => {
      const ok = data === undefined || data === null || validate(data);
      optional.errors = ok ? null : validate.errors;
      return ok;
    };
    optional.errors = null as typeof validate.errors;
    return optional;
  });
  // A CSV upload is read by its handler as a stream (never buffered whole); any other route with a
  // text/csv body fails its body validation.
  app.addContentTypeParser('text/csv', (_request, payload, done) => done(null, payload));

  app.setErrorHandler(
    (
      error: Error & { statusCode?: number; code?: string; validation?: ErrorObject[]; validationContext?: string },
      request,
      reply,
    ) => {
      if (error.validation)
        return sendProblem(
          request,
          reply,
          'INPUT_INVALID',
          `invalid ${error.validationContext === 'querystring' ? 'query' : (error.validationContext ?? 'request')}`,
          {
            errors: fieldErrors(error.validationContext ?? 'body', error.validation),
          },
        );
      const database = databaseFailure(error, herald.store);
      if (database) {
        herald.logger.error({ err: error, url: pathOf(request) }, 'API request failed: the database is unavailable');
        reply.header('retry-after', String(databaseRetryAfterSeconds));
        return sendProblem(request, reply, database, databaseFailureDetail(database), { status: 503 });
      }
      if (error instanceof AppError) {
        const errors = error.details.errors as FieldError[] | undefined;
        return sendProblem(request, reply, error.code, error.message, {
          ...(errors && {
            errors: errors.map((e) => ({
              path: /^\/(body|query|params|headers)(\/|$)/.test(e.path) ? e.path : `/body${e.path}`,
              message: e.message,
            })),
          }),
        });
      }
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
        return sendProblem(
          request,
          reply,
          'INPUT_TOO_LARGE',
          `the body is over api.maxBodyBytes (${config.maxBodyBytes} bytes)`,
        );
      if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
        return sendProblem(
          request,
          reply,
          'INPUT_INVALID',
          `unsupported content type ${String(request.headers['content-type']).slice(0, 100)}: send application/json`,
          { status: 415 },
        );
      if (
        error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
        error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
        error instanceof SyntaxError
      )
        return sendProblem(request, reply, 'INPUT_INVALID', `malformed JSON body: ${error.message.slice(0, 200)}`);
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500)
        return sendProblem(request, reply, 'INPUT_INVALID', error.message.slice(0, 300), { status: error.statusCode });
      herald.logger.error({ err: error, url: pathOf(request) }, 'API request failed');
      return sendProblem(request, reply, 'INTERNAL', 'internal error: the server log has the details');
    },
  );
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, 'NOT_FOUND', `no route ${request.method} ${pathOf(request).slice(0, 200)}`),
  );

  // A body must be in within api.bodyTimeoutMs of the head: Fastify sets no request timeout and
  // Node's stops counting once the head is in, so a client dripping a body one byte at a time (even
  // to a route that refused it 401: Node still reads that body to its end) held its connection for
  // ever, and a thousand of them took every file descriptor. The handler of an authorized CSV upload
  // lifts the deadline: it streams the file for as long as it takes.
  app.addHook('onRequest', async (request) => {
    const declared = request.headers['content-length'];
    if (request.headers['transfer-encoding'] === undefined && (declared === undefined || Number(declared) === 0))
      return;
    const deadline = setTimeout(() => request.raw.destroy(), config.bodyTimeoutMs).unref();
    request.bodyDeadline = deadline;
    request.raw.once('end', () => clearTimeout(deadline));
  });

  // A DNS-rebinding page is refused by the name it used (docs/api.md), before any token is read: on
  // the dashboard, /metrics and /healthz too. After the body deadline is armed: a refused body drains.
  const allowedHosts = allowedHostNames(config);
  app.addHook('onRequest', async (request, reply) => {
    const refusal = hostRefusal(request.host, allowedHosts);
    if (refusal) return sendProblem(request, reply, 'HOST_NOT_ALLOWED', refusal);
    if (urlCarriesNul(request.url))
      return sendProblem(
        request,
        reply,
        'INPUT_INVALID',
        'the URL carries a NUL character (%00), which no value may contain',
      );
  });
  // The same for a body's strings (JSON, dashboard forms), once parsed: see nul-characters.ts.
  app.addHook('preValidation', async (request, reply) => {
    if (bodyCarriesNul(request.body))
      return sendProblem(
        request,
        reply,
        'INPUT_INVALID',
        'the body carries a NUL character (\\u0000), which no value may contain',
      );
  });

  // Before the body is read: who is calling, and may they.
  app.addHook('onRequest', async (request, reply) => {
    const spec = request.routeOptions.config.spec;
    if (!spec || spec.permission === 'public') return;
    const now = herald.clock.now();
    const header = request.headers.authorization;
    const presented = typeof header === 'string' && /^Bearer /i.test(header) ? header.slice(7).trim() : undefined;
    const attempt = presented === undefined ? 'nothing' : 'credential';
    const wait = limiter.blockedFor(request.ip, now, attempt);
    if (wait > 0) {
      reply.header('retry-after', String(Math.ceil(wait / 1000)));
      return sendProblem(
        request,
        reply,
        'RATE_LIMITED',
        'too many failed authentications from this address; retry later',
      );
    }
    // The first query of every authenticated request: a database gone silent answers 503 here instead
    // of holding the request (docs/api.md).
    const row =
      presented === undefined
        ? undefined
        : await answerWithin(authenticateToken(herald.store, presented), databaseDeadlineMs);
    if (!row) {
      // A state-changing call without any token counts too: each one is audited, and a client sending
      // them without end wrote an audit row per request (thousands a second, never purged). It counts
      // apart from wrong tokens: any web page can send it, and it must not lock out valid tokens.
      if (presented !== undefined || changesState(spec)) limiter.recordFailure(request.ip, now, attempt);
      reply.header('www-authenticate', 'Bearer realm="herald"');
      return sendProblem(
        request,
        reply,
        'AUTH_REQUIRED',
        presented === undefined
          ? 'send Authorization: Bearer <token> (herald tokens create)'
          : 'the token is unknown, revoked or malformed',
      );
    }
    request.caller = { tokenId: row.token_id, name: row.name, role: row.role };
    if (!roleAllows(row.role, spec.permission))
      return sendProblem(
        request,
        reply,
        'FORBIDDEN',
        `${spec.operationId} needs the ${spec.permission} role; this token is ${row.role}`,
      );
    // last_used_at is written at most once a minute per token, and not even tried in between.
    if (now - (touched.get(row.token_id) ?? 0) >= touchEveryMs) {
      touched.set(row.token_id, now);
      await answerWithin(touchToken(herald.store, row.token_id, now, touchEveryMs), databaseDeadlineMs);
    }
  });

  // Who did what, when, with which result: every state-changing call, refused ones included.
  app.addHook('onSend', async (request, reply, payload) => {
    const spec = request.routeOptions.config.spec;
    if (!spec || !changesState(spec)) return payload;
    // A blocked client is not audited request by request: the failures that blocked it were.
    if (request.problemCode === 'RATE_LIMITED') return payload;
    try {
      // Bounded like the token lookup: a database gone silent must not hold the answer (docs/api.md).
      const written = insertAudit(herald.store, {
        at: herald.clock.now(),
        token_id: request.caller?.tokenId ?? null,
        role: request.caller?.role ?? null,
        method: request.method,
        route: spec.operationId,
        path: pathOf(request),
        status: reply.statusCode,
        error_code: request.problemCode ?? null,
        client: request.ip,
      });
      await answerWithin(written, databaseDeadlineMs);
    } catch (error) {
      herald.logger.error({ err: error, route: spec.operationId }, 'API audit could not be written');
    }
    return payload;
  });

  for (const spec of routes) {
    const status = spec.status ?? 200;
    app.route({
      method: spec.method,
      url: spec.path,
      config: { spec },
      schema: {
        ...(spec.params && { params: spec.params }),
        ...(spec.headers && { headers: spec.headers }),
        // A route without query parameters refuses any (a typo such as ?stauts=failed is an error, not
        // ignored: an operator would read the whole list as the filtered one).
        querystring: spec.query ?? emptyQuery,
        ...(spec.body && spec.body !== 'csv' && { body: spec.body }),
        response: { [status]: spec.response, ...spec.otherResponses },
      },
      preValidation: async (request, reply) => {
        if (spec.body === 'csv') {
          if (!String(request.headers['content-type'] ?? '').startsWith('text/csv'))
            return sendProblem(request, reply, 'INPUT_INVALID', 'send the CSV as Content-Type: text/csv', {
              status: 415,
            });
          clearTimeout(request.bodyDeadline);
        } else if (!spec.body && request.body !== undefined && !isEmptyObject(request.body))
          return sendProblem(request, reply, 'INPUT_INVALID', `${spec.operationId} takes no body`);
      },
      handler: async (request, reply) => {
        reply.code(status);
        const context: ApiContext = {
          herald,
          engine,
          caller: request.caller,
          track,
          doctorRuns: ticks.doctor,
          shownEtas: ticks.shownEta,
          databaseStatuses: ticks.database,
        };
        return spec.handler(context, {
          params: request.params,
          query: request.query ?? {},
          body: request.body,
          request,
          reply,
        });
      },
    });
  }
  // Prometheus text, not JSON: outside the routes table, public like /healthz (docs/metrics.md).
  addMetricsRoute(app, herald);
  // The dashboard's pages under /ui (docs/dashboard.md): the same domain functions, its own sessions.
  registerDashboard(app, { herald, engine, limiter, ticks, track });

  return {
    app,
    whenIdle: async () => {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}
