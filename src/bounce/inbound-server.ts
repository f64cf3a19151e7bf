import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import { createClientConnections } from '../common/client-connections.ts';
import { createContentBudget, createProgressCounter } from './inbound-limits.ts';
import { createRateWindow, decideRecipient, type RecipientPolicy, type UnsubscribeTarget } from './inbound-policy.ts';
import type { InboundMessage, InboundResult } from './inbound-processor.ts';

// The inbound SMTP listener (smtp-server): bounces, feedback reports and auto-replies sent to the
// VERP addresses. No AUTH; STARTTLS offered when inbound.tls names a certificate, never required
// (senders of bounces rarely authenticate and their TLS is opportunistic); SIZE announced (RFC 1870) and enforced while reading, a limit of
// simultaneous clients, of connections per client address, of the length of a session and of the
// commands a session may send without a message being accepted (so one client, idle or trickling
// bytes, cannot lock everyone else out), of messages per client per minute (for at most
// maxTrackedClients clients), of message content held (in all and per client), and recipients
// restricted to our own addresses (550 5.7.1 otherwise: never a relay). Each refusal is reported
// (onRefusal) for /metrics.

/**
 * Why the listener refused a client or one of its recipients: the 4xx limits, and the 550 5.7.1 of
 * a recipient that is not ours (`relay`) or a VERP address of ours that does not verify.
 */
export type InboundRefusal =
  | 'max_clients'
  | 'connections_per_client'
  | 'session_time_limit'
  | 'commands_without_message'
  | 'messages_per_minute'
  | 'tracked_clients'
  | 'buffered_bytes'
  | 'client_buffered_bytes'
  | 'relay'
  | 'unverified_verp';

export interface InboundServerOptions {
  host: string;
  port: number;
  policy: RecipientPolicy;
  maxMessageBytes: number;
  /**
   * Bytes of message content held at once, all sessions together (received and not yet answered);
   * a message that would pass it is answered 452 4.3.1 (try later) and its bytes are dropped.
   */
  maxBufferedBytes: number;
  maxClients: number;
  /** Simultaneous connections of one client address; more get 421 4.7.0 at once. */
  maxConnectionsPerClient: number;
  /** A session is closed (421 4.4.2) this long after it connected, whatever it is doing. */
  sessionTimeoutMs: number;
  /** Commands a session may send without a message being accepted; then 421 4.7.0 and closed. */
  maxCommandsWithoutMessage: number;
  messagesPerMinutePerClient: number;
  /**
   * Clients whose message count of the current minute is kept, at most; while that many have sent
   * this minute, a new one is answered 421 4.7.0 at MAIL FROM until the minute ends (10_000 when not given).
   */
  maxTrackedClients?: number;
  /** An IPv6 client is counted by this prefix of its address (64 when not given). */
  ipv6ClientPrefixLength?: number;
  /** Bytes kept of an oversized message (for its sample); the rest is read and dropped. */
  keepOfOversized: number;
  clock: Clock;
  logger?: Logger;
  handle(message: InboundMessage): Promise<InboundResult>;
  /** Called for each refusal by a limit (a flood is seen in /metrics, not in one log line per refusal). */
  onRefusal?(reason: InboundRefusal): void;
  /** Acts on the verified mailto: unsubscribe recipients of a received message (policy.unsubscribe). */
  unsubscribe?(targets: UnsubscribeTarget[], receivedAt: number): Promise<void>;
  /** STARTTLS is offered with this certificate (inbound.tls); without it, not at all. */
  tls?: { key: Buffer; cert: Buffer; minVersion: 'TLSv1.2' | 'TLSv1.3' } | undefined;
}

export interface InboundServer {
  /** host:port actually bound (port 0 picks a free one). */
  address: { host: string; port: number };
  /** Serves another certificate to the sessions that start TLS from now on (a renewal). */
  updateCertificate(certificate: { key: Buffer; cert: Buffer }): void;
  close(): Promise<void>;
}

interface Envelope {
  logIds: string[];
  unsubscribes: UnsubscribeTarget[];
  /** Recipients other than unsubscribe addresses (VERP, feedback): the message is then a report too. */
  reportRecipients: number;
  /** postmaster@ / abuse@ recipients: the message is kept for review. */
  reviewRecipients: number;
}

const smtpError = (code: number, message: string): Error => Object.assign(new Error(message), { responseCode: code });

export async function startInboundServer(options: InboundServerOptions): Promise<InboundServer> {
  const logger = options.logger ?? silentLogger;
  const refused = (reason: InboundRefusal) => options.onRefusal?.(reason);
  const rate = createRateWindow(
    options.messagesPerMinutePerClient,
    options.maxTrackedClients,
    options.ipv6ClientPrefixLength,
  );
  // The minute a full rate table was last reported: once a minute is enough to tell the operator.
  let reportedFullAt = Number.NaN;
  const envelopes = new WeakMap<SMTPServerSession, Envelope>();
  const perClient = createClientConnections(options.maxConnectionsPerClient, options.ipv6ClientPrefixLength);
  // One client's sessions together hold at most one message of the largest size.
  const budget = createContentBudget(options.maxBufferedBytes, options.maxMessageBytes, options.ipv6ClientPrefixLength);
  const progress = createProgressCounter(options.maxCommandsWithoutMessage);
  // Open sockets by "address|port" (what both the socket and the session know), and the key of
  // each session id, so a limit noticed on a session can close its socket.
  const sockets = new Map<string, Socket>();
  const sessionKeys = new Map<string, string>();
  const keyOf = (address: string | undefined, port: number | undefined) =>
    `${(address ?? '').replace(/^::ffff:/i, '')}|${port ?? 0}`;
  const dropped = new WeakSet<Socket>();
  const drop = (socket: Socket, reason: InboundRefusal, reply: string) => {
    if (dropped.has(socket) || socket.destroyed) return;
    dropped.add(socket);
    refused(reason);
    socket.on('error', () => {});
    // The reply is best effort: a client that does not read must not keep the socket open.
    const force = setTimeout(() => socket.destroy(), 2_000);
    force.unref();
    socket.once('close', () => clearTimeout(force));
    socket.end(`${reply}\r\n`, () => socket.destroy());
  };
  // smtp-server reports each command to its logger (debug, tnx "command"): the one place where a
  // NOOP, RSET or HELO is seen, so commands without progress are counted there.
  const commandWatcher = {
    debug(entry: { tnx?: string; cid?: string } | undefined) {
      if (entry?.tnx !== 'command' || !entry.cid) return;
      if (progress.command(entry.cid)) return;
      const socket = sockets.get(sessionKeys.get(entry.cid) ?? '');
      if (socket) drop(socket, 'commands_without_message', '421 4.7.0 Too many commands without a message, closing');
    },
    trace() {},
    info() {},
    warn() {},
    error() {},
    fatal() {},
  };

  const server = new SMTPServer({
    banner: 'Herald inbound: bounces and feedback reports only',
    size: options.maxMessageBytes,
    // STARTTLS only with the operator's certificate: smtp-server's built-in one is public.
    disabledCommands: options.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(options.tls && { key: options.tls.key, cert: options.tls.cert, minVersion: options.tls.minVersion }),
    authOptional: true,
    maxClients: options.maxClients,
    logger: commandWatcher,
    // Reverse lookups of the client would make each connection wait on DNS; nothing uses the name.
    disableReverseLookup: true,
    closeTimeout: 5_000,
    onConnect(session, callback) {
      sessionKeys.set(session.id, keyOf(session.remoteAddress, session.remotePort));
      callback();
    },
    onClose(session) {
      sessionKeys.delete(session.id);
      progress.end(session.id);
    },
    onMailFrom(_address, session, callback) {
      const now = options.clock.now();
      const decision = rate.take(session.remoteAddress, now);
      if (decision === 'over_limit') {
        refused('messages_per_minute');
        callback(smtpError(421, '4.7.0 Too many messages from your address, try again later'));
        return;
      }
      if (decision === 'untracked') {
        refused('tracked_clients');
        const minute = now - (now % 60_000);
        if (reportedFullAt !== minute) {
          reportedFullAt = minute;
          logger.warn(
            { maxTrackedClients: rate.size, remoteAddress: session.remoteAddress },
            'inbound: inbound.maxTrackedClients clients sent mail this minute; new clients are answered 421 until it ends',
          );
        }
        callback(smtpError(421, '4.7.0 Too many clients at the moment, try again later'));
        return;
      }
      envelopes.set(session, { logIds: [], unsubscribes: [], reportRecipients: 0, reviewRecipients: 0 });
      callback();
    },
    onRcptTo(address, session, callback) {
      const decision = decideRecipient(address.address, options.policy, options.clock.now());
      if (!decision.ok) {
        refused(decision.unverifiedVerp ? 'unverified_verp' : 'relay');
        callback(smtpError(decision.code, decision.message));
        return;
      }
      const envelope = envelopes.get(session);
      if (decision.unsubscribe) {
        const target = decision.unsubscribe;
        if (envelope && !envelope.unsubscribes.some((u) => u.logId === target.logId))
          envelope.unsubscribes.push(target);
      } else if (envelope && decision.reviewOnly) {
        envelope.reviewRecipients++;
      } else if (envelope) {
        envelope.reportRecipients++;
        if (decision.logId) envelope.logIds.push(decision.logId);
      }
      callback();
    },
    onData(stream: SMTPServerDataStream, session, reply) {
      const chunks: Buffer[] = [];
      let size = 0;
      let kept = 0;
      let tooLarge = false;
      // Past the shared budget or the client's share of it: nothing more is kept, and the message
      // is answered 452 at its end.
      let overBudget: 'total' | 'client' | undefined;
      const client = session.remoteAddress ?? '';
      const release = () => {
        budget.release(client, kept);
        kept = 0;
        chunks.length = 0;
      };
      const callback: typeof reply = (...answer) => {
        release();
        reply(...answer);
      };
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxMessageBytes) tooLarge = true;
        if (overBudget) return;
        // Past the limit only the first bytes are kept (for the sample); memory stays bounded.
        const room = (tooLarge ? options.keepOfOversized : options.maxMessageBytes) - kept;
        if (room > 0) {
          const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
          overBudget = budget.reserve(client, part.length);
          if (overBudget) {
            release();
            return;
          }
          chunks.push(part);
          kept += part.length;
        }
      });
      const finish = () => {
        let raw = Buffer.concat(chunks);
        if (tooLarge && raw.length > options.keepOfOversized) raw = raw.subarray(0, options.keepOfOversized);
        const message: InboundMessage = {
          raw,
          size,
          tooLarge: tooLarge || stream.sizeExceeded,
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          envelopeLogIds: envelopes.get(session)?.logIds ?? [],
          reviewOnly: (envelopes.get(session)?.reportRecipients ?? 0) === 0,
          remoteAddress: session.remoteAddress,
          receivedAt: options.clock.now(),
        };
        options.handle(message).then(
          (result) => {
            if (result.outcome === 'too_large')
              callback(smtpError(552, `5.3.4 Message too big (limit ${options.maxMessageBytes} bytes)`));
            else {
              progress.progress(session.id);
              callback(null, `2.0.0 Accepted (${result.outcome})`);
            }
          },
          (error: unknown) => {
            logger.error({ err: describeError(error) }, 'processing an inbound message failed');
            callback(smtpError(451, '4.3.0 Temporary failure processing the message, try again later'));
          },
        );
      };
      stream.on('error', (error) => callback(error));
      stream.on('end', () => {
        if (overBudget === 'client') {
          refused('client_buffered_bytes');
          callback(smtpError(452, '4.3.1 Too much content from your address at once, try again later'));
          return;
        }
        if (overBudget) {
          refused('buffered_bytes');
          logger.warn(
            { maxBufferedBytes: options.maxBufferedBytes, remoteAddress: session.remoteAddress },
            'inbound: message refused for now (452), the messages being received hold inbound.maxBufferedBytes',
          );
          callback(smtpError(452, '4.3.1 Insufficient system storage, try again later'));
          return;
        }
        const envelope = envelopes.get(session);
        const tooBig = tooLarge || stream.sizeExceeded;
        if (envelope && envelope.unsubscribes.length > 0 && !tooBig) {
          // RFC 8058 mailto: the message itself says nothing; receiving it is the request.
          const receivedAt = options.clock.now();
          const unsubscribed = options.unsubscribe
            ? options.unsubscribe(envelope.unsubscribes, receivedAt)
            : Promise.resolve();
          unsubscribed.then(
            () => {
              if (envelope.reportRecipients + envelope.reviewRecipients === 0) {
                progress.progress(session.id);
                callback(null, '2.0.0 Accepted (unsubscribe)');
              } else finish();
            },
            (error: unknown) => {
              logger.error({ err: describeError(error) }, 'processing a mailto: unsubscribe failed');
              callback(smtpError(451, '4.3.0 Temporary failure processing the message, try again later'));
            },
          );
          return;
        }
        finish();
      });
    },
  });
  server.on('error', (error) => logger.warn({ err: describeError(error) }, 'inbound SMTP connection error'));

  // Every accepted socket passes this gate before smtp-server sees it: a client address over its
  // connection cap, or any client once maxClients sockets are admitted, is answered 421 and closed
  // without taking a session slot, and each admitted socket has a deadline that no trickled byte
  // extends.
  const netServer = server.server;
  const accept = netServer.listeners('connection')[0] as (socket: Socket) => void;
  netServer.removeAllListeners('connection');
  netServer.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? '';
    if (!perClient.open(client)) {
      drop(socket, 'connections_per_client', '421 4.7.0 Too many connections from your address, try again later');
      return;
    }
    // smtp-server makes the same check (and answers 421) after taking the socket; made here, as each
    // socket arrives, so the refusal is counted.
    if (sockets.size >= options.maxClients) {
      perClient.close(client);
      drop(socket, 'max_clients', '421 4.7.0 Too many connected clients, try again in a moment');
      return;
    }
    const key = keyOf(socket.remoteAddress, socket.remotePort);
    sockets.set(key, socket);
    const deadline = setTimeout(
      () => drop(socket, 'session_time_limit', '421 4.4.2 Session time limit reached, closing'),
      options.sessionTimeoutMs,
    );
    deadline.unref();
    socket.once('close', () => {
      clearTimeout(deadline);
      perClient.close(client);
      if (sockets.get(key) === socket) sockets.delete(key);
    });
    accept(socket);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const bound = server.server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    updateCertificate: (certificate) => server.updateSecureContext({ key: certificate.key, cert: certificate.cert }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
