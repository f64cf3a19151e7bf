import type { Logger } from '../common/logger.ts';
import { maskUrl } from '../common/mask-url.ts';

// Failure notifications: one JSON POST per failed run. The webhook is best effort: its own failure
// (refused, timeout, non-2xx) is logged and never affects the engine.

export type FetchFunction = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal; redirect: 'manual' },
) => Promise<{ ok: boolean; status: number; body?: { cancel(): Promise<void> } | null }>;

export interface FailureNotification {
  event: 'workflow.failed';
  workflow: string;
  runId: number;
  step: number | null;
  stepName: string | null;
  error: string;
  nodeId: string;
  startedAt: string;
  failedAt: string;
}

export async function notifyFailure(options: {
  url: string | undefined;
  notification: FailureNotification;
  logger: Logger;
  fetch?: FetchFunction;
  timeoutMs?: number;
}): Promise<boolean> {
  const { url, notification, logger } = options;
  if (!url) return false;
  const send = options.fetch ?? (globalThis.fetch as unknown as FetchFunction);
  try {
    const response = await send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'herald-workflows' },
      body: JSON.stringify(notification),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      // The run's error goes to workflows.webhookUrl only: a 3xx is an error status, not followed.
      redirect: 'manual',
    });
    // Only the status counts: the body is dropped unread rather than left holding the connection.
    await response.body?.cancel().catch(() => {});
    if (!response.ok) {
      logger.warn(
        { webhook: maskUrl(url), status: response.status, workflow: notification.workflow },
        'workflow failure webhook answered with an error status',
      );
      return false;
    }
    return true;
  } catch (error) {
    logger.warn(
      { webhook: maskUrl(url), err: (error as Error).message, workflow: notification.workflow },
      'workflow failure webhook could not be reached',
    );
    return false;
  }
}
