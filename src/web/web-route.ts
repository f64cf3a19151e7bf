import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Herald } from '../main.ts';
import type { ApiRole } from '../store/tables.ts';
import type { WorkflowEngine } from '../workflows/engine.ts';
import type { LiveSession } from './sessions.ts';

// What one dashboard route is and what its handler reaches. A page is `viewer` (read), an action
// `operator` or `admin` (CSRF-checked, origin-checked, audited); sign-in and the assets are public.

export type WebPermission = ApiRole | 'public';

export interface WebRouteConfig {
  permission: WebPermission;
  /** Audited under `web.<audit>` (every state-changing route has one). */
  audit?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    web?: WebRouteConfig;
  }
  interface FastifyRequest {
    webSession?: LiveSession;
    /** performance.now() when the dashboard received it (Server-Timing). */
    receivedAt?: number;
  }
}

export interface PageData {
  title: string;
  nav?: string;
  [key: string]: unknown;
}

export interface WebContext {
  herald: Herald;
  engine: WorkflowEngine;
  session: LiveSession | undefined;
  request: FastifyRequest;
  reply: FastifyReply;
  /** Renders a template inside the layout (or a fragment: templates named `_…` have no layout). */
  render(template: string, data: PageData, status?: number): Promise<FastifyReply>;
  /** True when the signed-in role may do what `needed` allows (action buttons are shown only then). */
  may(needed: ApiRole): boolean;
  /** Work that outlives the handler (a streamed CSV export) and must end before the role stops. */
  track(work: Promise<unknown>): void;
}

export type WebHandler = (context: WebContext) => Promise<FastifyReply | undefined>;
