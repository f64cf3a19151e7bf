import type { SubmitRequest } from '../../src/midsourcing/wire.ts';

/** A submit request as a marketing instance sends it: `parts` parts of `recipients` in all. */
export const midSubmitRequest = (marketingDeliveryId: number, parts = 2, recipients = 4): SubmitRequest => ({
  marketingDeliveryId,
  name: `d${marketingDeliveryId}`,
  fromAddress: 'news@brand.test',
  fromName: null,
  replyTo: null,
  subject: 'Hi',
  html: '<p>Hi</p>',
  text: null,
  validitySeconds: 3600,
  affinity: null,
  parts,
  recipients,
});
