import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readMessage } from '../src/bounce/mime-reader.ts';

// The lean MIME walker must read every real bounce as postal-mime does: same headers, text,
// report parts, originals and text attachments, over the whole shared corpus.

const repoRoot = resolve(fileURLToPath(import.meta.url), '../..');
const corpus = resolve(repoRoot, '../shared/corpus/bounces');

describe('lean MIME reader', () => {
  it('reads the corpus as postal-mime does', async () => {
    const files = readdirSync(corpus).filter((f) => f.endsWith('.eml')).sort();
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
});
