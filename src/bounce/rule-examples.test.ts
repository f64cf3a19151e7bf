import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkRuleExamples } from './rule-examples.ts';
import { layerBouncePacks, SHIPPED_BOUNCE_PACK, validateBouncePackText, type BouncePackLayer } from './rule-pack.ts';

async function packWith(site: string) {
  const layers = [
    await validateBouncePackText(readFileSync(SHIPPED_BOUNCE_PACK, 'utf8'), SHIPPED_BOUNCE_PACK),
    await validateBouncePackText(site, 'site.yaml'),
  ];
  expect(layers.flatMap((l) => l.issues)).toEqual([]);
  const { pack } = layerBouncePacks(layers.map((l) => l.layer as BouncePackLayer));
  return pack!;
}

describe("a rule's example (its test sample)", () => {
  it('passes when the layered pack decides the example with that rule', async () => {
    const pack = await packWith(`rules:
  - id: gatekeeper
    category: policyviolation
    code: ['550']
    text: 'refused by gatekeeper policy'
    example: '550 Message 7F3AB2C1D9 refused by gatekeeper policy 4711 for <pat@corp.test>'
`);
    expect(checkRuleExamples(pack)).toEqual([]);
  });

  it('names the rule that decides instead, or says that none does', async () => {
    const pack = await packWith(`rules:
  - id: gatekeeper
    category: policyviolation
    text: 'gatekeeper'
  - id: gatekeeper-block
    category: blocked
    text: 'gatekeeper policy'
    example: '550 refused by gatekeeper policy 12'
  - id: stale
    category: blocked
    text: 'refused by the old gatekeeper'
    example: '550 refused by the new gatekeeper'
`);
    expect(checkRuleExamples(pack)).toEqual([
      {
        file: 'site.yaml',
        line: 5,
        message:
          'rule gatekeeper-block: its example is decided by rule gatekeeper (site.yaml:2) as policyviolation, not by this rule',
      },
      {
        file: 'site.yaml',
        line: 9,
        message:
          'rule stale: its example is decided by rule gatekeeper (site.yaml:2) as policyviolation, not by this rule',
      },
    ]);
  });

  it('rejects an empty or oversized example', async () => {
    const { issues } = await validateBouncePackText(
      `rules:\n  - id: a\n    category: blocked\n    text: x\n    example: '${'y'.repeat(1001)}'\n`,
      'site.yaml',
    );
    expect(issues.map((i) => i.message)).toEqual(['rule a: example must be a reply of 1 to 1000 characters']);
  });
});
