import type { DoctorCheck, Finding } from './finding.ts';

// A configuration reference that matches nothing: a delivery naming an affinity that is not in
// shaping.affinities (the MTA leaves its messages pending forever), an affinity whose source address
// is not an address of this machine (every connection from it fails to bind), a delivery pushed to
// an execution instance missing from midsourcing.peers (nothing can forward or sync it).

const sendingStates = new Set(['prepared', 'start_pending', 'in_progress', 'paused']);

export const referencesCheck: DoctorCheck = {
  name: 'references',
  description:
    'deliveries naming an affinity, source address or mid-sourcing peer that the configuration does not define',
  run(snapshot) {
    const findings: Finding[] = [];
    const configuration = snapshot.configuration;
    const names = configuration.affinities.map((a) => a.name);
    let local = configuration.localAddresses === null ? null : new Set(configuration.localAddresses);
    // When no configured source address at all is local, the doctor runs on another machine than
    // the MTA: it cannot tell which addresses exist there.
    const configuredAddresses = configuration.affinities.flatMap((a) => a.addresses.map((x) => x.address));
    if (local !== null && !configuredAddresses.some((address) => local!.has(address))) local = null;
    for (const delivery of snapshot.deliveries) {
      if (delivery.scope === 'recent' || !sendingStates.has(delivery.state)) continue;
      const subject = `delivery ${delivery.id}`;
      const pending = delivery.counts.pending;
      if (delivery.executionPeer !== null) {
        if (!configuration.midPeers.includes(delivery.executionPeer))
          findings.push({
            check: 'references',
            severity: 'critical',
            subject,
            symptom: `pushed to the execution instance "${delivery.executionPeer}", which midsourcing.peers does not define`,
            cause: `the peer was renamed or removed from the configuration after the push: pause, resume, stop and the log sync cannot reach it (peers: ${configuration.midPeers.join(', ') || 'none'})`,
            fix: `add the peer "${delivery.executionPeer}" back to midsourcing.peers (name, url, secret) and run \`herald mid sync\``,
            evidence: {
              deliveryId: delivery.id,
              peer: delivery.executionPeer,
              configuredPeers: configuration.midPeers,
            },
            impact: delivery.counts.total,
          });
        continue;
      }
      const wanted = delivery.affinity;
      const affinity = configuration.affinities.find((a) => a.name === (wanted ?? 'default'));
      if (wanted !== null && !affinity && !(wanted === 'default' && names.length === 0)) {
        findings.push({
          check: 'references',
          severity: 'critical',
          subject,
          symptom: `names the affinity "${wanted}", which shaping.affinities does not define: its ${pending} pending messages are held and never sent`,
          cause: `no affinity is called "${wanted}" (defined: ${names.join(', ') || 'none'}); the MTA leaves the messages pending (a configuration problem, not the recipients')`,
          fix: `define the affinity "${wanted}" in shaping.affinities (addresses with heloName and publicId) and restart the MTA, or point the delivery at an existing one and prepare it again`,
          evidence: { deliveryId: delivery.id, affinity: wanted, configuredAffinities: names, pending },
          impact: pending,
          logs: `herald delivery logs ${delivery.id} --status pending`,
        });
        continue;
      }
      if (!affinity || local === null) continue;
      const missing = affinity.addresses.filter((a) => a.weight > 0 && !local.has(a.address));
      if (missing.length === 0) continue;
      const all = missing.length === affinity.addresses.filter((a) => a.weight > 0).length;
      findings.push({
        check: 'references',
        severity: all ? 'critical' : 'warning',
        subject,
        symptom: `its affinity "${affinity.name}" sends from ${missing.map((a) => a.address).join(', ')}, ${missing.length === 1 ? 'which is not an address' : 'which are not addresses'} of this machine`,
        cause: `the MTA cannot bind a connection to an address the machine does not have (EADDRNOTAVAIL)${all ? ': no address of the affinity can send, the messages stay pending' : ': those shares of the traffic fail to connect and move to the other addresses'} (local addresses: ${[...local].join(', ')})`,
        fix: `configure the address on the machine's interface, or correct shaping.affinities (affinity "${affinity.name}"): fix the address or set its weight to 0`,
        evidence: {
          deliveryId: delivery.id,
          affinity: affinity.name,
          missingAddresses: missing.map((a) => a.address),
          localAddresses: [...local],
          pending,
        },
        impact: all ? pending : Math.round((pending * missing.length) / affinity.addresses.length),
      });
    }
    return findings;
  },
};
