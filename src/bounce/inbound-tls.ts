import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { AppError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';

// The inbound listener's STARTTLS certificate (inbound.tls): read and checked at start (the key
// must be the certificate's), then watched, so a renewal (certbot, an ACME client, a copy by hand)
// is served to new sessions without a restart. A renewal that fails its check is logged and the
// certificate in service stays.

export interface InboundTlsFiles {
  certFile: string;
  keyFile: string;
}

export interface InboundCertificate {
  key: Buffer;
  cert: Buffer;
  subject: string;
  /** Expiry, ISO 8601. */
  validTo: string;
}

/** Reads and checks the pair; CONFIG_INVALID naming the key and the file when it is unusable. */
export function loadInboundCertificate(files: InboundTlsFiles): InboundCertificate {
  const read = (key: keyof InboundTlsFiles) => {
    try {
      return readFileSync(files[key]);
    } catch (error) {
      throw new AppError(
        'CONFIG_INVALID',
        `inbound.tls.${key}: cannot read ${files[key]} (${(error as Error).message})`,
      );
    }
  };
  const cert = read('certFile');
  const key = read('keyFile');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new AppError(
      'CONFIG_INVALID',
      `inbound.tls.certFile: ${files.certFile} is not a PEM certificate (${(error as Error).message})`,
    );
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key)))
      throw new Error(`it is not the key of the certificate in ${files.certFile} (${certificate.subject})`);
  } catch (error) {
    throw new AppError('CONFIG_INVALID', `inbound.tls.keyFile: ${files.keyFile}: ${(error as Error).message}`);
  }
  return { key, cert, subject: certificate.subject, validTo: new Date(certificate.validTo).toISOString() };
}

/**
 * Checks the files' modification times every `checkMs` and hands a changed, sound pair to `apply`.
 * Returns the function that stops watching.
 */
export function watchInboundCertificate(options: {
  files: InboundTlsFiles;
  checkMs: number;
  apply(certificate: InboundCertificate): void;
  logger: Logger;
}): () => void {
  const { files, logger } = options;
  const stamp = () => {
    try {
      return `${statSync(files.certFile).mtimeMs}|${statSync(files.keyFile).mtimeMs}`;
    } catch {
      return 'missing';
    }
  };
  let seen = stamp();
  const timer = setInterval(() => {
    const now = stamp();
    if (now === seen) return;
    seen = now;
    try {
      const certificate = loadInboundCertificate(files);
      options.apply(certificate);
      logger.info(
        { subject: certificate.subject, validTo: certificate.validTo },
        'inbound: STARTTLS certificate reloaded',
      );
    } catch (error) {
      // A renewal caught between writing the certificate and the key is checked again at the next change.
      logger.warn(
        { err: (error as Error).message },
        'inbound: the changed STARTTLS certificate files were not loaded; the previous certificate stays in service',
      );
    }
  }, options.checkMs);
  timer.unref();
  return () => clearInterval(timer);
}
