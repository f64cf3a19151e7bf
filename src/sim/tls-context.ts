// The simulator's self-signed certificate (CN=sim.test, 10 years), generated once with openssl and
// committed: it only serves STARTTLS on loopback test hosts and protects nothing.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';

const directory = new URL('./tls/', import.meta.url);

let cached: SecureContext | undefined;

export function simulatorCertificate(): { key: Buffer; cert: Buffer } {
  return {
    key: readFileSync(new URL('sim-key.pem', directory)),
    cert: readFileSync(new URL('sim-cert.pem', directory)),
  };
}

export function simulatorSecureContext(): SecureContext {
  cached ??= createSecureContext(simulatorCertificate());
  return cached;
}
