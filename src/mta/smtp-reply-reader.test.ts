import { describe, expect, it } from 'vitest';
import { SmtpReplyReader } from './smtp-reply-reader.ts';

describe('SMTP reply reader', () => {
  it('frames replies split anywhere across chunks, multi-line ones whole, in arrival order', async () => {
    const reader = new SmtpReplyReader();
    const first = reader.next();
    for (const chunk of ['2', '50-mx.test\r\n250-PIPE', 'LINING\r\n250 SIZE 10\r', '\n354 go\r\n250 ok\n']) {
      expect(reader.push(chunk)).toBe(true);
    }
    expect(await first).toBe('250-mx.test\n250-PIPELINING\n250 SIZE 10');
    expect(await reader.next()).toBe('354 go');
    expect(await reader.next()).toBe('250 ok');
  });

  it('accepts a bare code and answers null once the connection ended', async () => {
    const reader = new SmtpReplyReader();
    reader.push('250\r\n');
    expect(await reader.next()).toBe('250');
    const pending = reader.next();
    reader.end();
    expect(await pending).toBeNull();
    expect(await reader.next()).toBeNull();
  });

  it('refuses an endless line, an endless or oversized reply, a reply of mixed codes and a line that is not a reply', () => {
    const long = new SmtpReplyReader();
    expect(long.push(`250 ${'x'.repeat(5_000)}`)).toBe(false);
    expect(long.error).toBe('the server sent a reply line longer than 4096 characters');
    const many = new SmtpReplyReader();
    expect(many.push('250-x\r\n'.repeat(100))).toBe(false);
    expect(many.error).toBe('the server sent a reply of more than 100 lines');
    const wide = new SmtpReplyReader();
    expect(wide.push(`250-${'x'.repeat(4_000)}\r\n`.repeat(4))).toBe(true);
    expect(wide.push(`250 ${'x'.repeat(4_000)}\r\n`)).toBe(false);
    expect(wide.error).toBe('the server sent a reply longer than 16384 characters');
    const mixed = new SmtpReplyReader();
    expect(mixed.push('250-ok\r\n250-still ok\r\n550 no\r\n')).toBe(false);
    expect(mixed.error).toBe('the server sent a reply whose lines have different codes: "250-ok" then "550 no"');
    const garbage = new SmtpReplyReader();
    expect(garbage.push('hello there\r\n')).toBe(false);
    expect(garbage.error).toBe('the server sent a line that is not an SMTP reply: "hello there"');
  });

  it('refuses replies nobody asked for beyond a pipelined group', async () => {
    const reader = new SmtpReplyReader();
    expect(reader.push('250 ok\r\n'.repeat(8))).toBe(true);
    expect(reader.push('250 ok\r\n')).toBe(false);
    expect(reader.error).toBe('the server sent more than 8 replies to commands it was not sent');
  });
});
