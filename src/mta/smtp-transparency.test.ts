import { describe, expect, it } from 'vitest';
import { smtpDataOf } from './smtp-transparency.mjs';

describe('SMTP data transparency', () => {
  it('doubles a leading dot on every line and ends with CRLF . CRLF', () => {
    expect(smtpDataOf('.first\r\nsecond\r\n.\r\n..x\r\n')).toBe('..first\r\nsecond\r\n..\r\n...x\r\n.\r\n');
    expect(smtpDataOf('no line break at the end')).toBe('no line break at the end\r\n.\r\n');
    expect(smtpDataOf('')).toBe('.\r\n');
  });

  it('leaves CRLF text alone and turns bare CR or LF into CRLF', () => {
    const text = 'Subject: x\r\n\r\nbody\r\n';
    expect(smtpDataOf(text)).toBe(`${text}.\r\n`);
    expect(smtpDataOf('a\nb\rc\r\n.d\n')).toBe('a\r\nb\r\nc\r\n..d\r\n.\r\n');
  });
});
