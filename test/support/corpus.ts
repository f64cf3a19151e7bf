import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The labelled bounce corpus the suite runs against: a copy of the public Sisimai sample set kept in
 * the repository (test/corpus/bounces, BSD-2 licence and provenance next to the files), so a clone
 * alone passes its tests.
 */
export const bounceCorpusDir = fileURLToPath(new URL('../corpus/bounces', import.meta.url));

export function bounceCorpusFile(name: string): string {
  return resolve(bounceCorpusDir, name);
}
