import type { Static } from '@sinclair/typebox';
import {
  createSubscription,
  listSubscriptionViews,
  removeSubscription,
  resumeSubscriptionById,
  rotateSubscriptionSecret,
} from '../../webhooks/subscriptions.ts';
import type { ApiContext, HandlerInput } from '../route.ts';
import type * as S from '../schemas.ts';

// Webhook subscriptions through the API: the same functions as `herald webhooks …`.

type Id = Static<typeof S.idParams>;

export async function list({ herald }: ApiContext) {
  return { webhooks: await listSubscriptionViews(herald.store) };
}

export async function create(
  { herald }: ApiContext,
  { body }: HandlerInput<unknown, unknown, Static<typeof S.webhookCreateBody>>,
) {
  return createSubscription(herald.store, body, herald.clock.now(), herald.config.webhooks);
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
