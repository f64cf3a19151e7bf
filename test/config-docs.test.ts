import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { configurationReference } from '../scripts/config-reference.ts';

it('docs/configuration.md lists every key with its current default', () => {
  const doc = readFileSync(resolve(import.meta.dirname, '../docs/configuration.md'), 'utf8');
  // Out of date? Regenerate: node --import tsx scripts/config-reference.ts > docs/configuration.md
  expect(doc).toBe(configurationReference());
});
