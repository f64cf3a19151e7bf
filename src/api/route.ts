import type { Static, TSchema } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Eta } from '../delivery/eta.ts';
import type { DoctorRun } from '../doctor/run-doctor.ts';
import type { Herald } from '../main.ts';
import type { TickCache } from '../web/tick-cache.ts';
import type { DatabaseStatus } from '../workflows/db-status.ts';
import type { ApiRole } from '../store/tables.ts';
import type { WorkflowEngine } from '../workflows/engine.ts';

// What one entry of the routes table (routes.ts) is: method, path, schemas, permission, handler.
// Fastify's routes and the OpenAPI document are both generated from these entries.

export type Permission = ApiRole | 'public';

export interface Caller {
  tokenId: string;
  name: string;
  role: ApiRole;
}

/** What a handler reaches: the opened Herald, the API's workflow engine, and who is calling. */
export interface ApiContext {
  herald: Herald;
  engine: WorkflowEngine;
  caller: Caller | undefined;
  /** Work the handler started and that must finish before the role stops (a CSV import). */
  track(work: Promise<unknown>): void;
  /** Doctor runs shared with the dashboard ('all' or a delivery id): one per 15 s at most, however many ask. */
  doctorRuns: TickCache<number | 'all', DoctorRun>;
  /** A delivery's ETA as shown, shared the same way (15 s, or 50 times its scan). */
  shownEtas: TickCache<number, Eta | undefined>;
  /** `herald db status`, shared the same way ('all'). */
  databaseStatuses: TickCache<'all', DatabaseStatus>;
}

export interface HandlerInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  request: FastifyRequest;
  reply: FastifyReply;
}

export type Method = 'GET' | 'POST' | 'DELETE';

export interface RouteSpec<P extends TSchema, Q extends TSchema, B extends TSchema, R extends TSchema> {
  method: Method;
  /** Fastify syntax (`/api/v1/deliveries/:id`); OpenAPI gets `{id}`. */
  path: string;
  /** Also the OpenAPI operationId. */
  operationId: string;
  summary: string;
  tag: string;
  permission: Permission;
  params?: P;
  query?: Q;
  /** Request headers it reads (Idempotency-Key), validated like the query. */
  headers?: TSchema;
  /** A JSON body, or `csv`: the raw request stream (text/csv), read by the handler. */
  body?: B | 'csv';
  response: R;
  /** A POST that reads only (validation of a definition): not audited, allowed to viewers. */
  readOnly?: true;
  /** 200 unless said otherwise (201 created, 202 accepted). */
  status?: 200 | 201 | 202;
  /** Other statuses this route answers with a body of its own (readyz: 503), besides problems. */
  otherResponses?: Record<number, TSchema>;
  handler(context: ApiContext, input: HandlerInput<Static<P>, Static<Q>, Static<B>>): Promise<Static<R>>;
}

// biome-ignore lint/suspicious/noExplicitAny: the table holds routes of every schema type
export type AnyRoute = RouteSpec<any, any, any, any>;

/** Declares one route with its handler typed from its schemas. */
export function defineRoute<
  P extends TSchema = TSchema,
  Q extends TSchema = TSchema,
  B extends TSchema = TSchema,
  R extends TSchema = TSchema,
>(spec: RouteSpec<P, Q, B, R>): AnyRoute {
  return spec as AnyRoute;
}

/** A state-changing route: audited, and never allowed to a viewer. */
export function changesState(route: AnyRoute): boolean {
  return route.method !== 'GET' && !route.readOnly;
}
