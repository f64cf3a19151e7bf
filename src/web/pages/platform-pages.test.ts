import { expect, it } from 'vitest';
import { evidenceHref } from './platform-pages.ts';

it.each([
  [
    { check: 'delivery-bounces', subject: 'delivery 12', logs: 'herald delivery logs 12 --reason user_unknown' },
    '/ui/deliveries/12/logs?reason=user_unknown',
  ],
  [
    {
      check: 'delivery-shaping',
      subject: 'delivery 3',
      logs: 'herald delivery logs 3 --status pending --domain gmail.com',
    },
    '/ui/deliveries/3/logs?status=pending&domain=gmail.com',
  ],
  [{ check: 'delivery-stuck', subject: 'delivery 4' }, '/ui/deliveries/4'],
  [{ check: 'workflows', subject: 'workflow tracking' }, '/ui/workflows/tracking'],
  [{ check: 'reputation', subject: 'mx rule google' }, '/ui/mx'],
  [{ check: 'unreachable', subject: 'domain example.com' }, '/ui/mx'],
  [{ check: 'database', subject: 'table delivery_logs' }, '/ui/database'],
  [{ check: 'midsourcing', subject: 'delivery push' }, '/ui/mid'],
  [{ check: 'configuration', subject: 'config mta.heloName' }, null],
])('links a finding about %o to %s', (finding, href) => {
  expect(evidenceHref(finding)).toBe(href);
});
