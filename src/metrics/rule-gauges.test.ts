import { describe, expect, it } from 'vitest';
import { ruleGauges } from './rule-gauges.ts';

describe('ruleGauges', () => {
  it('gives a perMxHost rule one series per scope: its busiest host and its most severe binding', () => {
    const host = (load: number, binding: 'none' | 'maxConnections' | 'maxMessagesPerHour') => ({
      rule: 'generic',
      shared: false,
      publicId: 1,
      load: { messagesPerHour: load },
      binding,
    });
    const gauges = ruleGauges([
      host(0.2, 'none'),
      host(0.97, 'maxMessagesPerHour'),
      host(0.4, 'maxConnections'),
      host(0.1, 'none'),
      { rule: 'google', shared: true, publicId: null, load: { messagesPerHour: 0.5 }, binding: 'none' },
    ]);
    expect(gauges).toEqual([
      { rule: 'generic', scope: 'id1', load: 0.97, binding: 'maxMessagesPerHour' },
      { rule: 'google', scope: 'shared', load: 0.5, binding: 'none' },
    ]);
  });
});
