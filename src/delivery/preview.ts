import { validateAddress } from '../audience/address.ts';
import { AppError } from '../common/errors.ts';
import type { Store } from '../store/database.ts';
import { compileContent, personalizationOf, type RenderedContent } from './content.ts';
import { recipientDataFor } from './delivery-log-store.ts';
import { getDelivery } from './delivery-store.ts';
import { mirrorUrlPreview } from './preparation.ts';

// One recipient's rendered subject and bodies, as preparation checks them (before the MTA's tracking
// decoration and MIME assembly): what the operator reads before starting a delivery.

export async function previewDelivery(
  store: Store,
  deliveryId: number,
  email: string,
): Promise<RenderedContent & { deliveryId: number; email: string }> {
  const delivery = await getDelivery(store, deliveryId);
  // As the import stores it: the local part as written (RFC 5321 §2.4), the domain in lower case (and
  // punycode); then all in lower case, as most lists hold addresses.
  const check = validateAddress(email);
  const normalized = check.ok ? check.email : email.trim();
  const recipient =
    (await recipientDataFor(store, delivery, normalized)) ??
    (await recipientDataFor(store, delivery, normalized.toLowerCase()));
  if (!recipient)
    throw new AppError('NOT_FOUND', `${normalized} is neither in delivery ${deliveryId}'s logs nor in its list`);
  const content = compileContent({
    subject: delivery.subject_template,
    html: delivery.html_template,
    text: delivery.text_template,
  });
  const data = { ...personalizationOf(recipient.email, recipient.data), mirror_url: mirrorUrlPreview };
  return { deliveryId, email: recipient.email, ...content.render(data, recipient.email) };
}
