import { describe, expect, it } from 'vitest';
import { DataEndScanner, messageFromDataBytes } from './data-end-scanner.ts';

function scanInPieces(wire: Buffer, cuts: number[]): number {
  const scanner = new DataEndScanner();
  let start = 0;
  for (const cut of [...cuts, wire.length]) {
    const chunk = wire.subarray(start, cut);
    const end = scanner.scan(chunk, 0);
    if (end >= 0) return start + end;
    start = cut;
  }
  return -1;
}

describe('DataEndScanner', () => {
  const wire = Buffer.from('Subject: x\r\n\r\nbody\r\n..dot\r\n.\r\nMAIL FROM:<a@b>\r\n');
  const expectedEnd = wire.indexOf('\r\n.\r\n') + 5;

  it('finds the terminator for every one- and two-cut split of the stream', () => {
    for (let first = 1; first < wire.length; first += 1) {
      expect(scanInPieces(wire, [first]), `cut ${first}`).toBe(expectedEnd);
      for (let second = first + 1; second < wire.length; second += 1) {
        expect(scanInPieces(wire, [first, second]), `cuts ${first},${second}`).toBe(expectedEnd);
      }
    }
  });

  it('treats the CRLF of the DATA line as the start of the terminator (empty message)', () => {
    expect(new DataEndScanner().scan(Buffer.from('.\r\nQUIT\r\n'), 0)).toBe(3);
    expect(scanInPieces(Buffer.from('.\r\n'), [1, 2])).toBe(3);
  });

  it('does not match a dot line that is not alone', () => {
    expect(new DataEndScanner().scan(Buffer.from('..\r\nx\r\n.x\r\n'), 0)).toBe(-1);
  });

  it('scans from an offset inside the chunk', () => {
    const chunk = Buffer.from('DATA\r\nhi\r\n.\r\n');
    expect(new DataEndScanner().scan(chunk, 6)).toBe(chunk.length);
  });
});

describe('messageFromDataBytes', () => {
  it('drops the terminator and undoes dot-stuffing', () => {
    expect(messageFromDataBytes(Buffer.from('..a\r\nb\r\n..\r\n...c\r\n.\r\n')).toString()).toBe(
      '.a\r\nb\r\n.\r\n..c\r\n',
    );
    expect(messageFromDataBytes(Buffer.from('.\r\n')).toString()).toBe('');
  });
});
