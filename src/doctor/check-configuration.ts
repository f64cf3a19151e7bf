import type { DoctorCheck } from './finding.ts';

// The configuration's unsafe settings (src/config/safety.ts), as findings: a valid configuration
// can still send mail that receivers junk or cannot answer (loopback tracking links, a bounce
// domain that does not resolve, EHLO localhost, no DKIM).

export const configurationCheck: DoctorCheck = {
  name: 'configuration',
  description: 'settings unsafe for real mail: tracking base URL, bounce domain, EHLO name, DKIM keys, resolver',
  run(snapshot) {
    return snapshot.configurationWarnings.map((warning) => ({
      check: 'configuration',
      severity: 'warning',
      subject: `config ${warning.key}`,
      symptom: warning.message,
      cause: `${warning.key} is unsafe for real mail (${warning.id})`,
      fix: warning.fix,
      evidence: { id: warning.id, key: warning.key },
    }));
  },
};
