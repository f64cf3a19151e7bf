import { describe, expect, it } from 'vitest';
import { aaaaData, buildResponse, encodeName, mxData, parseQuery, readName } from './dns-packet.ts';

describe('dns packet helpers', () => {
  it('encodes names, the root name and null MX', () => {
    expect(encodeName('mx.a.test.')).toEqual(Buffer.from('026d780161047465737400', 'hex'));
    expect(mxData(0, '.')).toEqual(Buffer.from([0, 0, 0]));
    expect(() => encodeName('a..test')).toThrow(RangeError);
  });

  it('expands IPv6 addresses', () => {
    expect(aaaaData('::1').toString('hex')).toBe('00000000000000000000000000000001');
    expect(aaaaData('2001:db8::ff:1').toString('hex')).toBe('20010db80000000000000000' + '00ff0001');
    expect(() => aaaaData('::ffff:1.2.3.4')).toThrow(RangeError);
  });

  it('reads compressed names and refuses loops and overruns', () => {
    const packet = Buffer.concat([encodeName('a.test'), Buffer.from([1, 0x62, 0xc0, 0])]);
    expect(readName(packet, 8)).toEqual({ value: 'b.a.test', end: 12 });
    expect(readName(Buffer.from([0xc0, 0]), 0)).toBeNull();
    expect(readName(Buffer.from([5, 0x61]), 0)).toBeNull();
  });

  it('parses a query and echoes its question in the response', () => {
    const query = Buffer.concat([
      Buffer.from('abcd01000001000000000000', 'hex'),
      encodeName('X.Test'),
      Buffer.from('000f0001', 'hex'),
    ]);
    const parsed = parseQuery(query);
    expect(parsed).toMatchObject({ kind: 'question', question: { id: 0xabcd, name: 'x.test', type: 15, class: 1 } });
    if (parsed.kind !== 'question') return;
    const response = buildResponse(parsed.question, 0, [{ type: 15, ttl: 300, data: mxData(10, 'mx.x.test') }]);
    expect(response.readUInt16BE(2)).toBe(0x8500);
    expect(response.subarray(12, 12 + parsed.question.raw.length)).toEqual(parsed.question.raw);
    expect(parseQuery(response)).toEqual({ kind: 'ignore' });
    expect(parseQuery(Buffer.from('abcd28000001000000000000', 'hex'))).toEqual({ kind: 'error', id: 0xabcd, code: 4 });
  });
});
