import { TagToken, Tokenizer } from 'liquidjs';
import { AppError } from '../common/errors.ts';
import { findRenderedHrefs, type ExtractedLink, type GuardedHref, type HrefAttribute } from '../tracking/links.ts';
import { classifyRenderedHref, dataChoosesScheme } from '../tracking/rendered-href.ts';
import type { CompiledContent, ContentTemplates } from './content.ts';
import { compileFastTemplate, type FastTemplate } from './fast-template.ts';

// The personalization check of preparation: every recipient's message must render, and every tracked
// link must render to a URL the redirect can send to, before anything is sent — a recipient the check
// missed would fail at send time, one by one, as a content error.
//
// Rendering every recipient costs ~140 µs (LiquidJS, a template with a loop): 2 min 20 s per
// million. So a recipient is rendered in full only when a value that can change the outcome was not
// seen yet. Whether a template renders depends on the data's shape (names and types) and on the
// values of the variables read by tags or by filters other than default/downcase/upcase (a loop
// bound, a split, a comparison); a plain `{{ name }}` renders any string. The check key of a recipient
// is its shape and those values. A personalized link's URL depends on the values it prints: a link
// written with plain outputs of data variables (`https://shop.example/?id={{ customer_id }}`) is
// rendered alone for every recipient (a few string joins); any other is rendered with the message,
// its variables' values added to the check key.

export interface RecipientProblem {
  recipient: string;
  template: 'subject' | 'html' | 'text';
  line: number | undefined;
  message: string;
}

/**
 * A link whose scheme recipient data chooses and that rendered, for some recipients, to something
 * Herald does not send as a link (javascript:, data:, a relative URL…): their message goes out with
 * the link's text but without its href (tracking/decorator.ts). A warning, not a failure.
 */
export interface RefusedLink {
  /** 1-based, as operators count tracked links; null for a link with data-herald-track="off". */
  link: number | null;
  urlTemplate: string;
  /** The variables the href prints: the fields to look at in the list. */
  variables: string[];
  /** Recipients whose message loses this link. */
  recipients: number;
  example: { recipient: string; value: string; reason: string };
}

export interface PersonalizationCheck {
  /** The problems of one recipient's personalization (empty when it renders and its links are valid). */
  check(email: string, data: Record<string, unknown>): readonly RecipientProblem[];
  /** The links removed from some recipients' messages so far, with how many recipients each. */
  refusedLinks(): RefusedLink[];
}

interface StandaloneLink {
  link: ExtractedLink;
  render: FastTemplate;
  line: number;
}

/** Tags whose argument, when a single name, only tests presence. */
const presenceTags = new Set(['if', 'unless', 'elsif']);

/** The answer for a recipient without problems, shared (nothing allocated per recipient). */
const noProblems: readonly RecipientProblem[] = Object.freeze([]);

const noIndexes: readonly number[] = Object.freeze([]);

/** One recipient's refused links: link index → the value and why (the first occurrence's). */
type RefusedHere = Map<number, { value: string; reason: string }>;

function noteRefusal(here: RefusedHere | undefined, index: number, value: string, reason: string): RefusedHere {
  const map = here ?? new Map();
  if (!map.has(index)) map.set(index, { value, reason });
  return map;
}

/** Check keys kept; past it the set starts over (more renders, never a missed check). */
const maxKeys = 100_000;

export function createPersonalizationCheck(
  templates: ContentTemplates,
  /** The HTML template with tracked links marked (tracking/links.ts), compiled as the MTA compiles it. */
  content: CompiledContent,
  links: readonly ExtractedLink[],
  /** Per link index, how its href is written, and the opted-out hrefs data may turn into javascript: (tracking/links.ts). */
  marks: { hrefs?: readonly HrefAttribute[]; guarded?: readonly GuardedHref[] } = {},
): PersonalizationCheck {
  const hrefs = marks.hrefs ?? [];
  const guarded = marks.guarded ?? [];
  // Opted-out hrefs as links of negative index (-1 for guard 0…): judged and counted like the others.
  const guardLinks: ExtractedLink[] = guarded.map((g, i) => ({
    index: -(i + 1),
    urlTemplate: g.urlTemplate,
    label: '',
  }));
  const sources = [templates.subject, templates.html ?? '', templates.text ?? ''];
  const inTags = new Set<string>();
  const keyed = new Set<string>();
  const presence = new Set<string>();
  for (const source of sources) collectVariables(source, inTags, keyed, presence);
  for (const link of guardLinks) for (const name of liquidVariablesOf(link.urlTemplate)) keyed.add(name);
  const standalone: StandaloneLink[] = [];
  const html = templates.html ?? '';
  for (const link of links) {
    if (!link.urlTemplate.includes('{{') && !link.urlTemplate.includes('{%')) continue;
    const variables = liquidVariablesOf(link.urlTemplate);
    const render = compileFastTemplate(link.urlTemplate, { html: true });
    // A loop or assign variable, or a tag, in the URL: only the message's own render says what it is.
    if (render === null || variables.some((name) => inTags.has(name))) {
      for (const name of variables) keyed.add(name);
      continue;
    }
    standalone.push({ link, render, line: lineOf(html, link.urlTemplate) });
  }
  const keyedNames = [...keyed];
  const presenceNames = [...presence].filter((name) => !keyed.has(name));
  const checkKey = createCheckKey(keyedNames, presenceNames);
  // A clean key, with the indexes of the links its render refused (counted again for each recipient of the key).
  const seen = new Map<string, readonly number[]>();
  const refused = new Map<number, RefusedLink>();
  const refuse = (email: string, link: ExtractedLink, value: string, reason: string): void => {
    const entry = refused.get(link.index);
    if (entry) entry.recipients++;
    else
      refused.set(link.index, {
        link: link.index >= 0 ? link.index + 1 : null,
        urlTemplate: link.urlTemplate,
        variables: printedFieldsOf(link.urlTemplate),
        recipients: 1,
        example: { recipient: email, value: shorten(value), reason },
      });
  };
  const standaloneIndexes = new Set(standalone.map((s) => s.link.index));
  const quoteOf = (index: number) => (index >= 0 ? hrefs[index] : guarded[-index - 1])?.quote ?? '"';
  const linkOf = (index: number) => (index >= 0 ? links[index] : guardLinks[-index - 1]);
  const countRefused = (email: string, here: RefusedHere | undefined): void => {
    for (const [index, value] of here ?? []) refuse(email, linkOf(index)!, value.value, value.reason);
  };
  return {
    // Tracked links in order, then opted-out ones.
    refusedLinks: () => [...refused.values()].sort((a, b) => (a.link ?? Infinity) - (b.link ?? Infinity)),
    check(email, data) {
      let problems = noProblems;
      let renderInFull = false;
      // Refused by this recipient's render: counted once per recipient and link, whatever the occurrences.
      // Created on the first refusal: nothing is allocated for a recipient whose links are fine (no
      // closure either: one per recipient cost as much as the rest of the check).
      let refusedHere: RefusedHere | undefined;
      for (let i = 0; i < standalone.length; i++) {
        const { link, render, line } = standalone[i]!;
        const rendered = render(data);
        // A value the fast path leaves to LiquidJS (missing, not a string, HTML-special): the full render decides.
        if (rendered === undefined) {
          renderInFull = true;
          continue;
        }
        const verdict = judgeLinkValue(link, rendered, quoteOf(link.index));
        if (verdict === 'problem') problems = [...problems, linkProblem(email, link, rendered, line)];
        else if (verdict !== 'ok') refusedHere = noteRefusal(refusedHere, link.index, rendered, verdict.reason);
      }
      const key = checkKey(data);
      const remembered = renderInFull ? undefined : seen.get(key);
      if (remembered !== undefined) {
        countRefused(email, refusedHere);
        for (const index of remembered) refused.get(index)!.recipients++;
        return problems;
      }
      try {
        const out = content.render(data, email);
        if (out.html !== null)
          for (const found of findRenderedHrefs(out.html)) {
            const link = linkOf(found.guarded ? -(found.index + 1) : found.index);
            if (!link) continue;
            const verdict = judgeLinkValue(link, found.value, quoteOf(link.index));
            if (verdict === 'problem')
              problems = [...problems, linkProblem(email, link, found.value, lineOf(html, link.urlTemplate))];
            else if (verdict !== 'ok') refusedHere = noteRefusal(refusedHere, link.index, found.value, verdict.reason);
          }
      } catch (error) {
        const details = error instanceof AppError ? (error.details as { template?: string; line?: number }) : {};
        problems = [
          ...problems,
          {
            recipient: email,
            template: (details?.template as RecipientProblem['template']) ?? 'html',
            line: details?.line,
            // Its own message (template, recipient, Liquid's line): the list's code is said once, in front.
            message: error instanceof Error ? error.message : String(error),
          },
        ];
      }
      // Only a clean render is remembered: every recipient of a failing key is named.
      if (problems.length > 0) return dedupe(problems);
      countRefused(email, refusedHere);
      if (seen.size >= maxKeys) seen.clear();
      // Standalone links are judged for every recipient anyway: only the others are remembered.
      seen.set(key, refusedHere ? [...refusedHere.keys()].filter((index) => !standaloneIndexes.has(index)) : noIndexes);
      return problems;
    },
  };
}

/** The identifiers of tags (and of outputs the fast path cannot render: other filters, dotted paths) of a template. */
function collectVariables(source: string, inTags: Set<string>, keyed: Set<string>, presence: Set<string>): void {
  if (!source.includes('{')) return;
  for (const token of new Tokenizer(source).readTopLevelTokens()) {
    if (token instanceof TagToken) {
      // `{% if first_name %}`: a presence test reads whether the value is false or nil, nothing more.
      if (presenceTags.has(token.name) && /^\s*[A-Za-z_][\w-]*\s*$/.test(token.args)) {
        presence.add(token.args.trim());
        continue;
      }
      for (const name of identifiersOf(token.args)) {
        inTags.add(name);
        keyed.add(name);
      }
    } else if ('content' in token && typeof token.content === 'string') {
      // An output: `{{ name }}` with default/downcase/upcase renders any string; anything else may not.
      if (compileFastTemplate(`{{${token.content}}}`) === null)
        for (const name of identifiersOf(token.content)) keyed.add(name);
    }
  }
}

/** Every name in Liquid source outside string literals (filter names and keywords too: a larger key, never a smaller one). */
function identifiersOf(liquid: string): string[] {
  const code = liquid.replace(/"[^"]*"|'[^']*'/g, ' ');
  return [...new Set(code.match(/[A-Za-z_][\w-]*/g) ?? [])];
}

/** The names in the Liquid parts of a link's URL (not the words of the URL around them). */
function liquidVariablesOf(urlTemplate: string): string[] {
  const names = new Set<string>();
  for (const match of urlTemplate.matchAll(/\{\{([\s\S]*?)\}\}|\{%([\s\S]*?)%\}/g))
    for (const name of identifiersOf(match[1] ?? match[2] ?? '')) names.add(name);
  return [...names];
}

/** The data fields a link's outputs print (`{{ website | raw }}`: website), filters and tags left out. */
function printedFieldsOf(urlTemplate: string): string[] {
  const names = new Set<string>();
  for (const match of urlTemplate.matchAll(/\{\{-?\s*([A-Za-z_][\w-]*)/g)) names.add(match[1]!);
  return [...names];
}

/** The shape (names and types) of the data, and the values of the variables that can change how it renders. */
function createCheckKey(keyedNames: readonly string[], presenceNames: readonly string[]) {
  // A list's recipients nearly all have the names of the previous one, in the same order and with
  // the same types: the shape string is then reused, not rebuilt (and re-hashed) for each recipient.
  let lastNames: string[] = [];
  let lastTypes: string[] = [];
  let lastShape = '';
  return (data: Record<string, unknown>): string => {
    let index = 0;
    let same = true;
    for (const name in data) {
      // Set by preparation for every recipient, always strings: nothing to tell recipients apart.
      if (name === 'email' || name === 'mirror_url') continue;
      const value = data[name];
      const type = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
      if (same && (lastNames[index] !== name || lastTypes[index] !== type)) {
        same = false;
        lastNames = lastNames.slice(0, index);
        lastTypes = lastTypes.slice(0, index);
      }
      if (!same) {
        lastNames.push(name);
        lastTypes.push(type);
      }
      index++;
    }
    if (!same || index !== lastNames.length) {
      lastNames.length = index;
      lastTypes.length = index;
      lastShape = lastNames.map((name, i) => `${name}:${lastTypes[i]},`).join('');
    }
    let key = lastShape;
    for (const name of keyedNames) {
      if (!Object.hasOwn(data, name)) continue;
      const value = data[name];
      // Length-prefixed: no value can pass for another value followed by more of the key.
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      key += `\u0000${name}=${text.length}:${text}`;
    }
    // Liquid's falsy values: false and nil (an empty string is true).
    for (const name of presenceNames) if (data[name] === false) key += `\u0000${name}=false`;
    return key;
  };
}

/**
 * A link written with an http(s) URL must render to a valid one, and so must a link whose scheme
 * comes from data when it renders to http(s) (`https://shop example.com` is a typo to fix, not a
 * link to drop); any other value of such a link is refused — the message goes without that href.
 */
function judgeLinkValue(
  link: ExtractedLink,
  rendered: string,
  quote: HrefAttribute['quote'],
): 'ok' | 'problem' | { reason: string } {
  const verdict = classifyRenderedHref(rendered, quote, link.index < 0);
  if (verdict.kind === 'track') return 'ok';
  // An opted-out link (negative index) is not tracked: a broken value only loses its href.
  if (link.index >= 0 && (!dataChoosesScheme(link.urlTemplate) || /^\s*https?:/i.test(rendered))) return 'problem';
  return verdict.kind === 'keep' ? 'ok' : { reason: verdict.reason };
}

function shorten(value: string): string {
  return value.length > 200 ? `${value.slice(0, 200)}…` : value;
}

function linkProblem(email: string, link: ExtractedLink, rendered: string, line: number): RecipientProblem {
  const shown = shorten(rendered);
  const variables = liquidVariablesOf(link.urlTemplate).join(', ');
  return {
    recipient: email,
    template: 'html',
    line,
    message: `html template, recipient ${email}, line ${line}: link ${link.index + 1} (${link.urlTemplate}) renders to ${JSON.stringify(shown)}, not a valid http(s) URL; ${variables ? `check the value of ${variables}` : 'fix the link in the template'}`,
  };
}

function lineOf(source: string, fragment: string): number {
  const at = source.indexOf(fragment);
  return at < 0 ? 1 : source.slice(0, at).split('\n').length;
}

function dedupe(problems: readonly RecipientProblem[]): readonly RecipientProblem[] {
  const messages = new Set<string>();
  return problems.filter((p) => !messages.has(p.message) && messages.add(p.message) !== undefined);
}
