import { Document, isMap, isSeq } from 'yaml';
import type { Simulator } from './simulator.ts';

// What an operator pastes into herald.yaml to send to a running simulator (`herald sim start`,
// `herald demo --keep-running`): its resolver and one route per MX host. Ports change at every start.

export function simulatorMtaSettings(simulator: Simulator) {
  return {
    resolverServers: [simulator.dnsServer],
    routes: simulator.routes.map((route) => ({ match: route.match, host: route.host, port: route.port })),
  };
}

export function simulatorConfigLines(simulator: Simulator): string[] {
  return [
    '# herald.yaml: send to this simulator (the ports change at every start)',
    ...compactYaml({ mta: simulatorMtaSettings(simulator) }),
    `# recipient domains: ${simulator.domains.map((d) => `${d.name} (${d.behaviour})`).join(', ')}`,
  ];
}

/** YAML with each route and the resolver list on one line (flow style), as an operator writes them. */
function compactYaml(value: unknown): string[] {
  const document = new Document(value);
  const mta = document.get('mta', true);
  if (isMap(mta))
    for (const item of mta.items) {
      if (isSeq(item.value) && (item.value.items.length === 0 || !isMap(item.value.items[0]))) item.value.flow = true;
      if (isSeq(item.value)) for (const entry of item.value.items) if (isMap(entry)) entry.flow = true;
    }
  return document.toString().trimEnd().split('\n');
}
