import type { Static } from '@sinclair/typebox';
import {
  createSubscription,
  listSubscriptionViews,
  removeSubscription,
  resumeSubscriptionById,
  rotateSubscriptionSecret,
} from '../../webhooks/subscriptions.ts';
import { AppError } from '../../common/errors.ts';
import { createOnce, idempotencyKeyHeader } from '../idempotency.ts';
import type { ApiContext, HandlerInput } from '../route.ts';
import type * as S from '../schemas.ts';

// Webhook subscriptions through the API: the same functions as `herald webhooks …`.

type Id = Static<typeof S.idParams>;

export async function list({ herald }: ApiContext) {
  return { webhooks: await listSubscriptionViews(herald.store) };
}

export async function create(
  { herald, caller }: ApiContext,
  { body, request, reply }: HandlerInput<unknown, unknown, Static<typeof S.webhookCreateBody>>,
) {
  const now = herald.clock.now();
  const key = request.headers[idempotencyKeyHeader];
  if (typeof key !== 'string' || !caller) return createSubscription(herald.store, body, now, herald.config.webhooks);
  let created: Awaited<ReturnType<typeof createSubscription>> | undefined;
  const { id, replayed } = await createOnce(
    { store: herald.store, tokenId: caller.tokenId, key, route: 'createWebhook', body, now },
    async (store) => {
      created = await createSubscription(store, body, now, herald.config.webhooks);
      return created.id;
    },
  );
  if (!replayed) return created!;
  // A generated secret is shown once (it is kept only to sign): the retry cannot show it again.
  if (body.secret === undefined)
    throw new AppError(
      'INVALID_STATE',
      `webhook subscription ${id} was created by the first request with this Idempotency-Key, and its generated secret shown only in that answer: get a new one with POST /api/v1/webhooks/${id}/rotate-secret`,
    );
  const view = (await listSubscriptionViews(herald.store)).find((subscription) => subscription.id === id);
  if (!view) throw new AppError('NOT_FOUND', `webhook subscription ${id} was deleted since`);
  reply.header('idempotent-replayed', 'true');
  return { ...view, secret: body.secret };
}

export async function remove({ herald }: ApiContext, { params }: HandlerInput<Id, unknown, unknown>) {
  return removeSubscription(herald.store, params.id);
}

export async function resume({ herald }: ApiContext, { params }: HandlerInput<Id, unknown, unknown>) {
  return resumeSubscriptionById(herald.store, params.id);
}

export async function rotateSecret(
  { herald }: ApiContext,
  { params, body }: HandlerInput<Id, unknown, Static<typeof S.webhookRotateBody> | undefined>,
) {
  // Every field is optional: a request without a body rotates with the defaults.
  return rotateSubscriptionSecret(herald.store, params.id, body ?? {}, herald.clock.now());
}
