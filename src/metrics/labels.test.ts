import { expect, it } from 'vitest';
import { domainClass, reasonLabel } from './labels.ts';

it.each([
  ['gmail-smtp-in.l.google.com', 'google'],
  ['alt1.aspmx.l.google.com.', 'google'],
  ['hotmail-com.olc.protection.outlook.com', 'microsoft'],
  ['mta7.am0.yahoodns.net', 'yahoo'],
  ['mx01.mail.icloud.com', 'apple'],
  ['smtp-in.orange.fr', 'orange'],
  ['mx1.free.fr', 'free'],
  ['mx00.emig.gmx.net', 'gmx'],
  ['mx.example.test', 'other'],
  ['notgoogle.com', 'other'],
  [null, 'other'],
])('%s is in class %s', (host, expected) => {
  expect(domainClass(host)).toBe(expected);
});

it('clamps reasons to the vocabulary', () => {
  expect(reasonLabel('mailbox_full')).toBe('mailbox_full');
  expect(reasonLabel('550 5.1.1 <someone@example.com>')).toBe('other');
  expect(reasonLabel(null)).toBe('other');
});
