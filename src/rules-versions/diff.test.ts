import { expect, it } from 'vitest';
import { diffPacks, formatDiff } from './diff.ts';

it('diffs MX packs by rule and backoff name; key order and comments are not changes', () => {
  const before =
    'rules:\n  - name: a\n    mask: "*.a"\n    maxConnections: 1\n    maxMessagesPerHour: 10\n  - name: b\n    mask: "*.b"\n    maxConnections: 1\n    maxMessagesPerHour: 10\n';
  const after =
    '# reordered keys\nrules:\n  - maxConnections: 1\n    name: a\n    maxMessagesPerHour: 10\n    mask: "*.a"\n  - name: c\n    mask: "*.c"\n    maxConnections: 1\n    maxMessagesPerHour: 10\nbackoff:\n  - { name: slow, reply: "^421", factor: 0.5, duration: 10m }\n';
  expect(diffPacks('mx', before, after)).toEqual({ added: ['c', 'backoff:slow'], removed: ['b'], changed: [] });
  expect(diffPacks('mx', undefined, before)).toEqual({ added: ['a', 'b'], removed: [], changed: [] });
});

it('diffs bounce packs by rule id and mapping entry', () => {
  const before =
    "version: '1'\ncategories: { blocked: refused }\nrules:\n  - { id: r1, category: blocked, code: [554] }\n";
  const after =
    "version: '2'\ncategories: { blocked: unreachable }\ndisable: [old-rule]\nrules:\n  - { id: r1, category: blocked, code: [554, 550] }\n";
  expect(diffPacks('bounce', before, after)).toEqual({
    added: ['disable:old-rule'],
    removed: [],
    changed: ['r1', 'category:blocked'],
  });
});

it('formats a diff for step logs and the CLI', () => {
  expect(formatDiff({ added: ['a'], removed: [], changed: ['b', 'c'] })).toBe('1 added (a), 2 changed (b, c)');
  expect(formatDiff({ added: [], removed: [], changed: [] })).toBe('no rule changed (comments or layout only)');
});
