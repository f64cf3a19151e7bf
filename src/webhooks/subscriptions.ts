import { randomBytes } from 'node:crypto';
import { AppError } from '../common/errors.ts';
import type { Store } from '../store/database.ts';
import type { WebhookKind, WebhookSubscriptionRow } from '../store/tables.ts';
import type { WebhooksConfig } from './config-schema.ts';
import { createDestinationPolicy, hostAddresses, literalAddress } from './destinations.ts';
import {
  countSubscriptions,
  deleteSubscription,
  getSubscription,
  insertSubscription,
  listSubscriptions,
  outboxBacklog,
  resumeSubscription,
  rotateSecret,
} from './webhook-store.ts';

// Webhook subscriptions as `herald webhooks` and the API manage them.

export const webhookKinds = [
  'delivery.state',
  'workflow.failed',
  'message.sent',
  'message.failed',
  'message.bounced',
  'message.complained',
  'message.unsubscribed',
  'message.opened',
  'message.clicked',
] as const satisfies readonly WebhookKind[];

export function subscriptionView(row: WebhookSubscriptionRow, backlog = 0) {
  const iso = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  return {
    id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as WebhookKind[],
    state: row.state,
    consecutiveFailures: Number(row.consecutive_failures),
    lastError: row.last_error,
    lastSuccessAt: iso(row.last_success_at),
    pausedAt: iso(row.paused_at),
    previousSecretUntil: iso(row.previous_secret_until),
    createdAt: new Date(row.created_at).toISOString(),
    backlog,
  };
}

export async function createSubscription(
  store: Store,
  request: { url: string; events: readonly string[]; secret?: string | undefined },
  now: number,
  config: WebhooksConfig,
) {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    // Quoted without what precedes an @ in the authority: 'http://crm:pass@host:99999/' is no URL
    // (the port), and the API answer and the CLI's stderr (a CI log) showed the password.
    const quoted = request.url.slice(0, 200).replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1***@');
    throw new AppError('INPUT_INVALID', `url: "${quoted}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new AppError('INPUT_INVALID', `url: only http and https are allowed (got ${url.protocol})`);
  // fetch refuses such a URL (and its error quotes it, password included): the receiver
  // authenticates Herald by x-herald-signature instead.
  if (url.username || url.password)
    throw new AppError(
      'INPUT_INVALID',
      'url: a user name or password in the URL is never sent; the receiver checks x-herald-signature instead',
    );
  // A name is checked where each request connects (post-webhook.ts): what it resolves to may change.
  const literal = literalAddress(url);
  const refused = literal === undefined ? undefined : createDestinationPolicy(config, hostAddresses()).refusal(literal);
  if (refused) throw new AppError('INPUT_INVALID', `url: ${refused}`);
  const unknown = request.events.filter((kind) => !(webhookKinds as readonly string[]).includes(kind));
  if (unknown.length > 0 || request.events.length === 0)
    throw new AppError(
      'INPUT_INVALID',
      `events: choose among ${webhookKinds.join(', ')}${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`,
    );
  const secret = chooseSecret(request.secret);
  // An integration creating a subscription at each start without deleting the old one (or a token
  // used to flood) would make every outcome write one outbox row per subscription.
  if ((await countSubscriptions(store)) >= config.maxSubscriptions)
    throw new AppError(
      'INPUT_INVALID',
      `webhooks.maxSubscriptions (${config.maxSubscriptions}) reached: delete one you no longer use (herald webhooks list, herald webhooks delete ID) or raise the key`,
    );
  const row = await insertSubscription(store, {
    url: url.toString(),
    events: [...new Set(request.events)],
    secret,
    now,
  });
  return { ...subscriptionView(row), secret };
}

export async function listSubscriptionViews(store: Store) {
  const backlog = await outboxBacklog(store);
  return (await listSubscriptions(store)).map((row) => subscriptionView(row, backlog.get(row.id) ?? 0));
}

async function requireSubscription(store: Store, id: number): Promise<WebhookSubscriptionRow> {
  const row = await getSubscription(store, id);
  if (!row) throw new AppError('NOT_FOUND', `no webhook subscription ${id}`);
  return row;
}

export async function removeSubscription(store: Store, id: number) {
  const row = await requireSubscription(store, id);
  await deleteSubscription(store, id);
  return subscriptionView(row);
}

/** A paused subscription active again: its pending events are sent from the next pass. */
export async function resumeSubscriptionById(store: Store, id: number) {
  await requireSubscription(store, id);
  await resumeSubscription(store, id);
  return subscriptionView((await getSubscription(store, id))!);
}

/** The secret asked for, or a generated one. */
function chooseSecret(requested: string | undefined): string {
  if (requested !== undefined && requested.length < 16)
    throw new AppError('INPUT_INVALID', 'secret: at least 16 characters');
  return requested ?? randomBytes(32).toString('base64url');
}

/** Hours the previous secret keeps signing after a rotation, at most (30 days). */
export const maxOverlapHours = 720;

/**
 * A new secret for a subscription (shown once, in the answer). The previous one keeps signing next
 * to it for `overlapHours` (0: it stops at once, for a secret that leaked), so the receiver can
 * switch to the new secret without a request it refuses or an event lost.
 */
export async function rotateSubscriptionSecret(
  store: Store,
  id: number,
  request: { secret?: string | undefined; overlapHours?: number | undefined },
  now: number,
) {
  const overlapHours = request.overlapHours ?? 24;
  if (!Number.isInteger(overlapHours) || overlapHours < 0 || overlapHours > maxOverlapHours)
    throw new AppError('INPUT_INVALID', `overlapHours: a whole number of hours from 0 to ${maxOverlapHours}`);
  const secret = chooseSecret(request.secret);
  const current = await requireSubscription(store, id);
  if (current.secret === secret) throw new AppError('INPUT_INVALID', 'secret: the same as the current one');
  const previousUntil = overlapHours === 0 ? null : now + overlapHours * 3_600_000;
  const row = await rotateSecret(store, id, { secret, previousUntil });
  if (!row) throw new AppError('NOT_FOUND', `no webhook subscription ${id}`);
  return { ...subscriptionView(row), secret };
}
