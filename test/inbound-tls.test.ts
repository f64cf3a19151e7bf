import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { describe, expect, it } from 'vitest';
import { createInboundRole } from '../src/bounce/inbound-role.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { createScratchDatabase } from './support/scratch-database.ts';
import { waitFor } from './support/wait.ts';

// STARTTLS on the inbound listener (inbound.tls): offered with the operator's certificate, a renewal
// written over the files is served to new sessions without a restart, and a key that is not the
// certificate's stops the role at start. The two pairs in test/support/tls are self-signed for
// inbound-a.test and inbound-b.test, made for these tests only (openssl req -x509, 100 years).

const pair = (name: 'a' | 'b') => ({
  cert: new URL(`./support/tls/inbound-${name}-cert.pem`, import.meta.url),
  key: new URL(`./support/tls/inbound-${name}-key.pem`, import.meta.url),
});

/** Opens a session that must upgrade with STARTTLS and trust only `name`'s certificate. */
async function startTls(port: number, name: 'a' | 'b'): Promise<'secure' | string> {
  const connection = new SMTPConnection({
    host: '127.0.0.1',
    port,
    requireTLS: true,
    servername: `inbound-${name}.test`,
    tls: { ca: [readFileSync(pair(name).cert)], servername: `inbound-${name}.test` },
    connectionTimeout: 5_000,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.connect(() => resolve());
    });
    return connection.secure ? 'secure' : 'not upgraded';
  } catch (error) {
    return (error as Error).message;
  } finally {
    connection.close();
  }
}

async function openWithTls(files: { certFile: string; keyFile: string }) {
  const database = await createScratchDatabase('sqlite');
  const herald = await openHerald({
    config: parseConfig(
      {
        database: { url: database.url },
        mta: { bounceDomain: 'bounces.brand.test' },
        inbound: { port: 0, tls: files },
      },
      'test',
    ),
    logger: silentLogger,
  });
  return {
    herald,
    close: async () => {
      await herald.close();
      await database.drop();
    },
  };
}

describe('inbound STARTTLS', () => {
  it('is offered with the configured certificate, and a renewal of the files is served without a restart', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'herald-inbound-tls-'));
    const files = { certFile: join(folder, 'cert.pem'), keyFile: join(folder, 'key.pem') };
    copyFileSync(pair('a').cert, files.certFile);
    copyFileSync(pair('a').key, files.keyFile);
    const { herald, close } = await openWithTls(files);
    const role = createInboundRole(herald, { certificateCheckMs: 20 });
    await role.start();
    try {
      const port = role.address()!.port;
      expect(await startTls(port, 'a')).toBe('secure');

      // A renewal: certificate, then key, written over the files in service.
      copyFileSync(pair('b').cert, files.certFile);
      copyFileSync(pair('b').key, files.keyFile);
      await waitFor(async () => (await startTls(port, 'b')) === 'secure', 'the renewed certificate served', 20_000);
      expect(await startTls(port, 'a')).not.toBe('secure');
    } finally {
      await role.stop();
      await close();
    }
  });

  it('refuses to start with a key that is not the certificate’s, naming inbound.tls.keyFile', async () => {
    const files = { certFile: pair('a').cert.pathname, keyFile: pair('b').key.pathname };
    const { herald, close } = await openWithTls(files);
    const role = createInboundRole(herald);
    try {
      await expect(role.start()).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('inbound.tls.keyFile'),
      });
      expect(role.address()).toBeUndefined();
    } finally {
      await role.stop();
      await close();
    }
  });

  it('is not offered without inbound.tls: a client that requires it gets no upgrade', async () => {
    const database = await createScratchDatabase('sqlite');
    const herald = await openHerald({
      config: parseConfig({ database: { url: database.url }, inbound: { port: 0 } }, 'test'),
      logger: silentLogger,
    });
    const role = createInboundRole(herald);
    await role.start();
    try {
      expect(await startTls(role.address()!.port, 'a')).toMatch(/STARTTLS/i);
    } finally {
      await role.stop();
      await herald.close();
      await database.drop();
    }
  });
});
