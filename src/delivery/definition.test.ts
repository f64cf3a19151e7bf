import { describe, expect, it } from 'vitest';
import { definitionFromJson } from './definition.ts';

const base = { name: 'Spring', from: 'news@example.com', subject: 'Hi', text: 'Hello' };

function problemOf(fields: Record<string, unknown>): string {
  try {
    definitionFromJson({ ...base, ...fields });
  } catch (error) {
    expect(error).toMatchObject({ code: 'DELIVERY_INVALID' });
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(fields)}`);
}

describe('delivery definition addresses', () => {
  it.each([
    [
      'from',
      'news@example.com,ceo@attacker.test',
      /^definition: from: "news@example\.com,ceo@attacker\.test" is not a valid address: /,
    ],
    ['from', 'News <news@example.com,ceo@attacker.test>', /^definition: from: .* is not a valid address: /],
    ['from', 'news@example.com\u0000', /^definition: from: .* is not a valid address: /],
    ['from', 'news@localhost', /^definition: from: "news@localhost" is not a valid address: /],
    ['replyTo', 'help@example.com,other@attacker.test', /^definition: replyTo: .* is not a valid address: /],
    [
      'fromName',
      'News\r\nBcc: list@attacker.test',
      /^definition: fromName: must be one line without control characters$/,
    ],
    [
      'from',
      'Ne\u0000ws <news@example.com>',
      /^definition: from: the name must be one line without control characters$/,
    ],
  ])('refuses %s %j', (field, value, message) => {
    expect(problemOf({ [field]: value })).toMatch(message);
  });

  it('keeps a valid mailbox, its domain in lower case', () => {
    const definition = definitionFromJson({
      ...base,
      from: 'Example News <news@Example.COM>',
      replyTo: 'help@example.com',
    });
    expect(definition).toMatchObject({
      fromName: 'Example News',
      fromAddress: 'news@example.com',
      replyTo: 'help@example.com',
    });
  });
});

describe('delivery definition links', () => {
  const links = (count: number, attributes = '') =>
    Array.from(
      { length: count },
      (_, i) => `<a href="https://shop.example.com/p/${i}"${attributes}>item ${i}</a>`,
    ).join('\n');

  it('refuses more tracked links than the MTA can sign per message, saying how many and what to do', () => {
    expect(problemOf({ html: links(50_000) })).toMatch(
      /^definition: html: 50000 tracked links; at most 1000 \(the MTA signs every tracked link of every message\): mark the others data-herald-track="off"$/,
    );
  });

  it('accepts 1000 tracked links, and any number of untracked ones', () => {
    expect(definitionFromJson({ ...base, html: links(1_000) }).html).toContain('item 999');
    expect(
      definitionFromJson({ ...base, html: `${links(1_000)}\n${links(5_000, ' data-herald-track="off"')}` }).html,
    ).toContain('item 4999');
  });
});

describe('delivery definition validity', () => {
  // 1e-9 hours was stored as a validity of 0 s: every message expired before it was tried.
  it('refuses a validity under one minute, naming the field', () => {
    expect(problemOf({ validityHours: 1e-9 })).toMatch(/validityHours: at least one minute \(0\.0167 hours\)/);
    expect(definitionFromJson({ ...base, validityHours: 1 / 60 }).validityHours).toBe(1 / 60);
  });
});
