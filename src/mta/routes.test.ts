import { describe, expect, it } from 'vitest';
import { compileRoutes, patternToRegex } from './routes.ts';

describe('compileRoutes', () => {
  const table = compileRoutes([
    { match: 'Example.test', host: '127.0.0.1', port: 2525 },
    { match: 'mx.exact.test', host: '127.0.0.1', port: 2526 },
    { match: '*.mx.test', host: '127.0.0.1', port: 2527 },
    { match: '*', host: 'smarthost.local', port: 25 },
  ]);

  it('routes a recipient domain without DNS, case-insensitively', () => {
    expect(table.forDomain('example.test')).toEqual({ host: '127.0.0.1', port: 2525 });
    expect(table.forDomain('other.test')).toBeUndefined();
  });

  it('maps MX host names exactly, then by pattern in order', () => {
    expect(table.forMxHost('MX.exact.test.')).toEqual({ host: '127.0.0.1', port: 2526 });
    expect(table.forMxHost('a.b.mx.test')).toEqual({ host: '127.0.0.1', port: 2527 });
    expect(table.forMxHost('mx.elsewhere.test')).toEqual({ host: 'smarthost.local', port: 25 });
  });

  it('does not treat a pattern as a domain route', () => {
    expect(table.forDomain('a.mx.test')).toBeUndefined();
  });

  it('escapes regex characters in patterns', () => {
    expect(patternToRegex('*.mx.test').test('aXmxXtest')).toBe(false);
    expect(patternToRegex('*.mx.test').test('.mx.test')).toBe(false);
  });
});
