import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readMessage } from '../src/bounce/mime-reader.ts';
import { bounceCorpusDir } from './support/corpus.ts';

// The lean MIME walker must read every real bounce as postal-mime does: same headers, text,
// report parts, originals and text attachments, over the whole shared corpus.

const corpus = bounceCorpusDir;

describe('lean MIME reader', () => {
  it('reads the corpus as postal-mime does', async () => {
    const files = readdirSync(corpus)
      .filter((f) => f.endsWith('.eml'))
      .sort();
    expect(files.length).toBeGreaterThan(200);
    const differing: string[] = [];
    for (const file of files) {
      const raw = readFileSync(resolve(corpus, file));
      const [lean, postal] = await Promise.all([readMessage(raw), readMessage(raw, undefined, 'postal-mime')]);
      try {
        expect(lean).toEqual(postal);
      } catch {
        differing.push(file);
      }
    }
    expect(differing).toEqual([]);
  });

  it('reads truncated bounces and bare-CR line endings as postal-mime does', async () => {
    const files = readdirSync(corpus)
      .filter((f) => f.endsWith('.eml'))
      .sort();
    const differing: string[] = [];
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (const file of files) {
      const raw = readFileSync(resolve(corpus, file));
      const text = raw.toString('latin1');
      // Cut anywhere (inside a part header, a boundary), between the CR and LF of a blank line,
      // and with odd line endings.
      const blankAt = text.indexOf('\r\n\r\n', Math.floor(next() * text.length));
      const variants = [
        raw.subarray(0, Math.floor(next() * raw.length)),
        Buffer.from(text.replace(/\r?\n/g, '\r\r\n'), 'latin1'),
      ];
      if (blankAt > 0) variants.push(raw.subarray(0, blankAt + 3));
      for (const variant of variants) {
        const [lean, postal] = await Promise.all([
          readMessage(variant),
          readMessage(variant, undefined, 'postal-mime'),
        ]);
        if (JSON.stringify(lean) !== JSON.stringify(postal)) differing.push(`${file} (${variant.length} bytes)`);
      }
    }
    expect(differing).toEqual([]);
  });
});
