import { expect, it } from 'vitest';
import { domainClass, providerClassifier, reasonLabel } from './labels.ts';

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
  ['hotmail.fr', 'microsoft'],
  ['Mail.Yahoo.co.jp', 'yahoo'],
  ['web.de', 'gmx'],
  ['gmail.com.example.test', 'other'],
  ['mx1.company-42.co.uk', 'other'],
  [null, 'other'],
])('%s is in class %s', (host, expected) => {
  expect(domainClass(host)).toBe(expected);
});

it('clamps reasons to the vocabulary', () => {
  expect(reasonLabel('mailbox_full')).toBe('mailbox_full');
  expect(reasonLabel('550 5.1.1 <someone@example.com>')).toBe('other');
  expect(reasonLabel(null)).toBe('other');
});

it('rejects a name of no provider in one pass of the patterns, not one pass per pattern', () => {
  let passes = 0;
  class CountedPattern extends RegExp {
    override test(name: string): boolean {
      passes++;
      return super.test(name);
    }
  }
  const classify = providerClassifier([
    ['google', new CountedPattern(/(^|\.)gmail\.com$/.source)],
    ['orange', new CountedPattern(/(^|\.)orange\.fr$/.source)],
  ]);
  const classes = Array.from({ length: 1000 }, (_, i) => classify(`mx.company-${i}.example`));
  expect(new Set(classes)).toEqual(new Set(['other']));
  expect(passes).toBe(0);
  expect(classify('orange.fr')).toBe('orange');
});
