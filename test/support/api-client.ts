import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import { openApiPath } from '../../src/api/openapi.ts';
import type { AnyRoute } from '../../src/api/route.ts';

// A real-HTTP client for the API tests (fetch against a listening app) that checks every answer
// against the OpenAPI document the server publishes.

export interface ApiAnswer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are read field by field
  body: any;
}

export function createApiClient(baseUrl: string, document: Record<string, unknown>) {
  const ajv = addFormats.default(new Ajv2020.default({ strict: false, allErrors: true }));
  const problem = ajv.compile((document.components as { schemas: { Problem: object } }).schemas.Problem);
  const validators = new Map<string, ReturnType<typeof ajv.compile>>();
  const paths = document.paths as Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>
  >;

  /** Checks one answer against the document: its status is declared and its body matches. */
  function check(method: string, routePath: string, answer: ApiAnswer): void {
    const operation = paths[openApiPath(routePath)]?.[method.toLowerCase()];
    expect(operation, `${method} ${routePath} is in the OpenAPI document`).toBeDefined();
    const contentType = answer.headers.get('content-type') ?? '';
    if (contentType.startsWith('application/problem+json')) {
      expect(
        problem(answer.body),
        `${method} ${routePath} ${answer.status} problem: ${JSON.stringify(problem.errors)}`,
      ).toBe(true);
      return;
    }
    const declared = operation!.responses[String(answer.status)];
    expect(declared, `${method} ${routePath} declares status ${answer.status}`).toBeDefined();
    const key = `${method} ${routePath} ${answer.status}`;
    let validate = validators.get(key);
    if (!validate) {
      validate = ajv.compile(declared!.content!['application/json']!.schema);
      validators.set(key, validate);
    }
    expect(
      validate(answer.body),
      `${key}: ${JSON.stringify(validate.errors)} in ${JSON.stringify(answer.body).slice(0, 500)}`,
    ).toBe(true);
  }

  async function call(
    method: string,
    routePath: string,
    options: {
      token?: string;
      params?: Record<string, string | number>;
      query?: string;
      body?: unknown;
      raw?: string;
      contentType?: string;
    } = {},
  ): Promise<ApiAnswer> {
    let url = routePath.replace(/:([A-Za-z]+)/g, (_, name: string) =>
      encodeURIComponent(String(options.params?.[name])),
    );
    if (options.query) url += `?${options.query}`;
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.raw !== undefined) {
      body = options.raw;
      headers['content-type'] = options.contentType ?? 'application/json';
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${baseUrl}${url}`, { method, headers, ...(body !== undefined && { body }) });
    const text = await response.text();
    const answer = { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
    check(method, routePath, answer);
    return answer;
  }

  return { call, check };
}

export function routeKey(route: AnyRoute): string {
  return `${route.method} ${route.path}`;
}
