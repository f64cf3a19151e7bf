import { describe, expect, it } from 'vitest';
import { analyzeHtmlTemplate } from '../tracking/links.ts';
import { compileContent, type ContentTemplates } from './content.ts';
import { createPersonalizationCheck } from './personalization-check.ts';

// Recipients of one data shape whose VALUES differ: the first renders, a later one does not. The
// check used to render only the first recipient of each shape, so the others failed at send time.

function checker(templates: ContentTemplates) {
  const analysis = templates.html === null ? null : analyzeHtmlTemplate(templates.html);
  let renders = 0;
  const content = compileContent({ ...templates, html: analysis?.markedTemplate ?? null });
  const counted = {
    render(data: Record<string, unknown>, recipient: string) {
      renders++;
      return content.render(data, recipient);
    },
  };
  const check = createPersonalizationCheck(templates, counted, analysis?.links ?? [], analysis ?? {});
  return {
    problems: (email: string, data: Record<string, unknown>) => check.check(email, { ...data, email }),
    renders: () => renders,
    refused: () => check.refusedLinks(),
  };
}

describe('personalization check', () => {
  it('names the recipient whose value breaks a tag, after one of the same shape rendered', () => {
    const { problems } = checker({
      subject: 'Hi',
      html: '<p>\n{% assign parts = full_name | split: " " %}Dear {{ parts[1] }}</p>',
      text: null,
    });
    expect(problems('a@x.test', { full_name: 'Ann Lee' })).toEqual([]);
    const [problem] = problems('b@x.test', { full_name: 'Cher' });
    expect(problem).toMatchObject({ recipient: 'b@x.test', template: 'html', line: 2 });
    expect(problem!.message).toMatch(/html template, recipient b@x\.test: undefined variable: parts\.1/);
  });

  it('names the recipient and value of a tracked link that renders to an invalid URL', () => {
    const { problems, renders } = checker({
      subject: 'Hi {{ first_name }}',
      html: '<p>Hello {{ first_name }}</p>\n<a href="https://{{ shop_host }}/offers?id={{ id }}">Offers</a>\n<a href="{{ url }}">More</a>',
      text: null,
    });
    expect(
      problems('a@x.test', { first_name: 'Ann', shop_host: 'shop.example.com', id: '1', url: 'https://a.test/' }),
    ).toEqual([]);
    expect(
      problems('c@x.test', { first_name: 'Cid', shop_host: 'shop.example.com', id: '3', url: 'mailto:c@x.test' }),
    ).toEqual([]);
    const bad = problems('b@x.test', {
      first_name: 'Bob',
      shop_host: 'shop example.com',
      id: '2',
      url: 'https://exa mple.com/',
    });
    expect(bad.map((p) => [p.recipient, p.line])).toEqual([
      ['b@x.test', 2],
      ['b@x.test', 3],
    ]);
    expect(bad[0]!.message).toContain('"https://shop example.com/offers?id=2", not a valid http(s) URL');
    expect(bad[0]!.message).toContain('shop_host, id');
    // Links of plain outputs are rendered alone: one message render for the shape, not one per recipient.
    expect(renders()).toBe(1);
  });

  it('renders a message once per distinct value a tag or link reads, not once per recipient', () => {
    const { problems, renders } = checker({
      subject: 'Your {{ city }} picks, {{ first_name | default: "friend" }}',
      html: '<ul>{% for i in (1..3) %}<li><a href="https://example.com/{{ city | downcase }}/pick-{{ i }}">Pick</a></li>{% endfor %}</ul>',
      text: 'Hello {{ first_name }}',
    });
    const cities = ['Lyon', 'Paris'];
    for (let i = 0; i < 100; i++)
      expect(problems(`u${i}@x.test`, { first_name: `F${i}`, city: cities[i % 2] })).toEqual([]);
    expect(renders()).toBe(2);
    expect(problems('bad@x.test', { first_name: 'F', city: 'a/b c' })).toEqual([]);
    expect(renders()).toBe(3);
  });

  it('reads a presence test `{% if name %}` as false/nil or not, not as a value', () => {
    const { problems, renders } = checker({
      subject: 'Hi',
      html: '{% if first_name %}Hi {{ first_name }}{% else %}Hello{% endif %}{% if vip %}{{ missing }}{% endif %}',
      text: null,
    });
    for (let i = 0; i < 50; i++) expect(problems(`u${i}@x.test`, { first_name: `F${i}`, vip: false })).toEqual([]);
    expect(renders()).toBe(1);
    // Every recipient of a failing key is named (a failed render is not remembered).
    expect(problems('v@x.test', { first_name: 'V', vip: true })).toHaveLength(1);
    expect(problems('w@x.test', { first_name: 'W', vip: true })).toHaveLength(1);
    expect(renders()).toBe(3);
  });

  it('tells shapes apart whatever order recipients of different shapes come in', () => {
    const { problems } = checker({ subject: 'Hi', html: '<p>{{ a }} {{ b | upcase }}</p>', text: null });
    const sequence: Array<[Record<string, unknown>, number]> = [
      [{ a: '1', b: 'x' }, 0],
      [{ a: '1' }, 1],
      [{ a: '1', b: 'y' }, 0],
      [{ b: 'x' }, 1],
      [{ a: '1', b: 'x', c: '2' }, 0],
      [{ a: '1' }, 1],
      [{ b: 'y', a: '2' }, 0],
    ];
    for (const [data, count] of sequence) expect(problems('r@x.test', data), JSON.stringify(data)).toHaveLength(count);
  });

  it('renders in full a recipient whose link value the fast path leaves to LiquidJS', () => {
    const { problems, renders } = checker({
      subject: 'Hi',
      html: '<a href="https://a.test/?q={{ q }}">x</a>',
      text: null,
    });
    expect(problems('a@x.test', { q: '1' })).toEqual([]);
    expect(problems('b@x.test', { q: 'a&b' })).toEqual([]);
    expect(problems('c@x.test', { q: 'c&d' })).toEqual([]);
    expect(renders()).toBe(3);
  });

  it('counts per link the recipients whose data made it something not sent as a link, naming the field', () => {
    const { problems, refused, renders } = checker({
      subject: 'Hi',
      // Link 1 is rendered alone per recipient; link 2 (a tag in the href) with the message, once per value.
      html: '<a href="{{ website }}">Site</a>\n{% for i in (1..2) %}<a href="{% if vip %}{{ promo | raw }}{% endif %}">Promo</a>{% endfor %}\n<a data-herald-track="off" href="{{ profile }}">Profile</a>',
      text: null,
    });
    const hostile = {
      website: 'JaVa\tScript:alert(1)',
      vip: true,
      promo: 'data:text/html,x',
      profile: 'https://a.test/p',
    };
    for (let i = 0; i < 5; i++) expect(problems(`h${i}@x.test`, hostile)).toEqual([]);
    const fine = { website: 'https://a.test/', vip: true, promo: 'mailto:a@a.test', profile: 'https://a.test/p' };
    expect(problems('ok@x.test', fine)).toEqual([]);
    expect(problems('k@x.test', { ...hostile, website: 'mailto:k@x.test' })).toEqual([]);
    // An opted-out link is checked too: its value is part of the check key.
    expect(problems('p@x.test', { ...fine, profile: 'vbscript:x' })).toEqual([]);
    // A value that looks like http(s) and is broken is a typo to fix: the preparation fails as before.
    expect(problems('t@x.test', { ...fine, website: 'https://exa mple.com', vip: false })).toHaveLength(1);
    expect(renders()).toBe(4);
    expect(refused()).toEqual([
      {
        link: 1,
        urlTemplate: '{{ website }}',
        variables: ['website'],
        recipients: 5,
        example: {
          recipient: 'h0@x.test',
          value: 'JaVa\tScript:alert(1)',
          reason: expect.stringContaining('javascript:'),
        },
      },
      {
        link: 2,
        urlTemplate: '{% if vip %}{{ promo | raw }}{% endif %}',
        variables: ['promo'],
        recipients: 6,
        example: { recipient: 'h0@x.test', value: 'data:text/html,x', reason: expect.stringContaining('data:') },
      },
      {
        link: null,
        urlTemplate: '{{ profile }}',
        variables: ['profile'],
        recipients: 1,
        example: { recipient: 'p@x.test', value: 'vbscript:x', reason: expect.stringContaining('vbscript:') },
      },
    ]);
  });

  it('accepts a tracked URL that would close an unquoted attribute: the redirect URL replaces it whole', () => {
    const { problems, refused } = checker({ subject: 'Hi', html: '<a href={{ url }}>Go</a>', text: null });
    expect(problems('a@x.test', { url: 'https://a.test/?q=a b' })).toEqual([]);
    expect(refused()).toEqual([]);
  });
});
