import type { TSchema } from '@sinclair/typebox';
import { problemSchema } from './problem.ts';
import type { AnyRoute } from './route.ts';

// The OpenAPI 3.1 document, generated from the routes table: nothing here is written by hand but the
// header. JSON Schema 2020-12 is OpenAPI 3.1's schema dialect; TypeBox's schemas are plain JSON Schema.

/** The schema as JSON (TypeBox keeps its own markers under symbols, which JSON drops). */
function plain(schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}

export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z]+)/g, '{$1}');
}

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

export function buildOpenApi(routes: readonly AnyRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const parameters: unknown[] = [];
    for (const [where, schema] of [
      ['path', route.params],
      ['query', route.query],
      ['header', route.headers],
    ] as const) {
      if (!schema) continue;
      const object = plain(schema as TSchema) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, property] of Object.entries(object.properties ?? {})) {
        const { description, ...rest } = property as { description?: string };
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (object.required ?? []).includes(name),
          schema: rest,
          ...(description && { description }),
        });
      }
    }
    const status = String(route.status ?? 200);
    const responses: Record<string, unknown> = {
      [status]: { description: route.summary, content: { 'application/json': { schema: plain(route.response) } } },
    };
    for (const [other, schema] of Object.entries(route.otherResponses ?? {}))
      responses[other] = {
        description: `${route.operationId}: ${other}`,
        content: { 'application/json': { schema: plain(schema) } },
      };
    if (route.body || route.params || route.query)
      responses['400'] = problemResponse('invalid request (field paths in `errors`)');
    if (route.permission !== 'public') {
      responses['401'] = problemResponse('no valid token (AUTH_REQUIRED)');
      responses['403'] = problemResponse('the token role may not do this (FORBIDDEN)');
      responses['429'] = problemResponse('too many failed authentications (RATE_LIMITED)');
    }
    if (route.params) responses['404'] = problemResponse('not found (NOT_FOUND)');
    if (route.method !== 'GET') responses['409'] = problemResponse('not allowed in the current state (INVALID_STATE)');
    if (route.body) responses['413'] = problemResponse('body over the size limit');
    responses.default = problemResponse('error (see `code`, docs/error-codes.md)');

    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      tags: [route.tag],
      'x-herald-permission': route.permission,
      ...(parameters.length > 0 && { parameters }),
      ...(route.permission === 'public' ? { security: [] } : {}),
      responses,
    };
    if (route.body === 'csv')
      operation.requestBody = {
        required: true,
        content: {
          'text/csv': { schema: { type: 'string', description: 'UTF-8 CSV with a header row naming an email column' } },
        },
      };
    else if (route.body)
      operation.requestBody = { required: true, content: { 'application/json': { schema: plain(route.body) } } };
    const path = openApiPath(route.path);
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Herald API',
      version,
      description:
        'Drive and watch Herald: deliveries, audiences, quarantine, workflows, shaping, rules, database. Bearer tokens from `herald tokens create`; roles viewer < operator < admin (`x-herald-permission`). Errors are RFC 9457 problem details with a stable `code`.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'herald_<id>_<secret>' } },
      schemas: { Problem: plain(problemSchema) },
    },
    paths,
  };
}
