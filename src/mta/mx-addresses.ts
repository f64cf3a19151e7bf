import { isIPv6 } from 'node:net';
import { localFailure, type SmtpReply } from '../bounce/smtp-reply.ts';

// Which addresses of an MX host a path tries, and which failures move it to the next one. Pure:
// the pool (connection-pool.ts) resolves the host and opens the connections.

export type AddressesToTry = { kind: 'addresses'; addresses: string[] } | { kind: 'failure'; reply: SmtpReply };

/**
 * The host's addresses a connection from `localAddress` can reach, in order, at most `max` of them
 * (each one that does not answer costs a connect timeout). A socket bound to an IPv4 address
 * cannot connect to an IPv6 one, nor the reverse: with a source address, only its family is kept.
 */
export function addressesToTry(
  mxHost: string,
  addresses: readonly string[],
  localAddress: string | undefined,
  max: number,
): AddressesToTry {
  const wantsIpv6 = localAddress ? isIPv6(localAddress) : undefined;
  const usable = wantsIpv6 === undefined ? addresses : addresses.filter((address) => isIPv6(address) === wantsIpv6);
  if (usable.length > 0) return { kind: 'addresses', addresses: usable.slice(0, Math.max(1, max)) };
  return {
    kind: 'failure',
    reply: localFailure(
      'no_address',
      `${mxHost} has no ${wantsIpv6 ? 'IPv6' : 'IPv4'} address (it has ${addresses.join(', ')}) to reach from source address ${localAddress}`,
      '4.4.4',
    ),
  };
}

/**
 * RFC 5321 §5.1: the client tries a host's other addresses when it cannot reach one: no reply at
 * all (refused, timeout, connection lost) or a 4yz at the greeting (421: that server is busy or
 * going down). A 5yz is the host's answer to this client: its other addresses, the same host,
 * would give the same.
 */
export function triesNextAddress(failure: SmtpReply): boolean {
  if (failure.code === null) return failure.local !== 'no_address' && failure.local !== 'dns_temporary';
  return failure.code >= 400 && failure.code < 500;
}
