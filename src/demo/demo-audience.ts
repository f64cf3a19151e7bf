import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { pickSimulatedRecipient } from '../sim/recipients.ts';
import type { Scenario } from '../sim/scenario.ts';

// The demo's audience: N recipients spread over the simulated domains, written as a CSV so the demo
// goes through the same import an operator uses.

const firstNames = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances', 'Niklaus'];
const cities = ['Lyon', 'Paris', 'Berlin', 'Madrid', 'Oslo', 'Porto', 'Turin', 'Ghent'];

export async function writeDemoCsv(file: string, count: number, scenario: Scenario): Promise<void> {
  const out = createWriteStream(file);
  out.write('email,first_name,city\n');
  for (let i = 0; i < count; i++) {
    const recipient = pickSimulatedRecipient(i, scenario);
    // One recipient in ten has no first name: the template's `default` filter covers them.
    const firstName = i % 10 === 3 ? '' : firstNames[i % firstNames.length]!;
    if (!out.write(`${recipient.address},${firstName},${cities[i % cities.length]}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

export const demoContent = {
  subject: 'Your {{ city }} picks, {{ first_name | default: "friend" }}',
  html: `<!doctype html>
<html><body style="font-family:sans-serif">
<h1>Hello {{ first_name | default: "friend" }},</h1>
<p>This week in {{ city }}: three new places to eat, two concerts and one very good bookshop.</p>
<ul>
{% for i in (1..3) %}<li><a href="https://example.com/{{ city | downcase }}/pick-{{ i }}">Pick {{ i }} in {{ city }}</a></li>
{% endfor %}</ul>
<p>You receive this email as {{ email }}.</p>
</body></html>
`,
  text: `Hello {{ first_name | default: "friend" }},

This week in {{ city }}: three new places to eat, two concerts and one very good bookshop.
https://example.com/{{ city | downcase }}

You receive this email as {{ email }}.
`,
};
