import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { localFailure, parseSmtpReply, type LocalFailure, type SmtpReply } from '../bounce/smtp-reply.ts';

// One SMTP connection to one MX host, over nodemailer's low-level SMTPConnection, with its
// callbacks turned into values. The key distinction: a reply to *this message* (the connection is
// still good) versus a connection-level failure (no final reply: the message was not delivered as
// far as we know and must be retried — never counted as sent).

export interface SmtpTimeouts {
  /** TCP connect + greeting + EHLO/STARTTLS. */
  connectTimeoutMs: number;
  /** Each command reply while idle or in the envelope. */
  commandTimeoutMs: number;
  /** The reply after the final dot (RFC 5321 §4.5.3.2.6). */
  dataTimeoutMs: number;
}

export interface SmtpConnectOptions {
  /** The address to connect to (IP, or a route's host). */
  host: string;
  port: number;
  /** The MX host name: SNI for STARTTLS. */
  servername: string;
  heloName: string;
  opportunisticTls: boolean;
  /** MX rule `tls: required`: no STARTTLS offered or it fails → no session (the message is deferred). */
  requireTls?: boolean;
  timeouts: SmtpTimeouts;
  localAddress?: string;
}

export type TransactionResult =
  | { kind: 'accepted'; reply: SmtpReply }
  /** The server answered this message with a refusal; the connection can carry the next one. */
  | { kind: 'rejected'; reply: SmtpReply }
  /** No final reply: dropped, timed out, 421. The connection is gone. */
  | { kind: 'connection_failed'; reply: SmtpReply };

export type OpenResult = { kind: 'open'; session: SmtpSession } | { kind: 'failed'; reply: SmtpReply };

export interface SmtpSession {
  send(envelopeFrom: string, recipient: string, message: string | Buffer): Promise<TransactionResult>;
  /** Polite end: QUIT, then close. */
  quit(): void;
  close(): void;
  readonly closed: boolean;
  /** True from quit()/close() on: the connection takes no new transaction. */
  readonly closing: boolean;
  /** Called once when the connection's socket is closed, whoever ended it. */
  onClose(listener: () => void): void;
}

interface NodemailerError extends Error {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
}

export function openSmtpSession(options: SmtpConnectOptions): Promise<OpenResult> {
  const servernameIsIp = /^[\d.]+$|:/.test(options.servername);
  const connection = new SMTPConnection({
    host: options.host,
    port: options.port,
    name: options.heloName,
    connectionTimeout: options.timeouts.connectTimeoutMs,
    greetingTimeout: options.timeouts.connectTimeoutMs,
    socketTimeout: options.timeouts.commandTimeoutMs,
    // Our own deadline covers a peer that never closes; do not keep a dead socket around.
    socketCloseTimeout: 1_000,
    ignoreTLS: !options.opportunisticTls && !options.requireTls,
    requireTLS: options.requireTls === true,
    opportunisticTLS: !options.requireTls,
    // MX certificates are rarely valid for the MX name; opportunistic TLS still beats plain text.
    tls: { rejectUnauthorized: false, ...(servernameIsIp ? {} : { servername: options.servername }) },
    localAddress: options.localAddress,
    allowInternalNetworkInterfaces: true,
    logger: false,
  });
  let closed = false;
  // Set by quit()/close(): no transaction may start on a connection that is going away.
  let closing = false;
  // nodemailer does not always call back a send that was pending when the socket went away
  // (e.g. after QUIT); the end of the connection settles it as a connection failure.
  let pendingSend: ((result: TransactionResult) => void) | null = null;
  const closeListeners: Array<() => void> = [];
  let lastError: NodemailerError | undefined;
  connection.on('error', (error: NodemailerError) => {
    lastError = error;
  });
  connection.once('end', () => {
    closed = true;
    // The settle function clears pendingSend itself (and ignores a second settlement). On a 421
    // (rate limit at MAIL FROM) nodemailer closes first and calls the send back right after, with
    // the server's words: let that callback settle it, so `421 4.7.0 ...` reaches qualification and backoff.
    queueMicrotask(() =>
      pendingSend?.({
        kind: 'connection_failed',
        reply: lastError
          ? replyFromError(lastError)
          : localFailure('connection_lost', 'connection closed during the transaction'),
      }),
    );
    // nodemailer says 'end' when it starts closing; the socket may still be open (our FIN sent,
    // the server's pending). The pool counts the connection until the socket is really closed.
    const socket = connection._socket;
    const notify = () => {
      for (const listener of closeListeners.splice(0)) listener();
    };
    if (socket && !socket.closed) socket.once('close', notify);
    else notify();
  });

  const session: SmtpSession = {
    get closed() {
      return closed;
    },
    onClose(listener) {
      if (closed) listener();
      else closeListeners.push(listener);
    },
    get closing() {
      return closing || closed;
    },
    quit() {
      if (closed || closing) return;
      closing = true;
      connection.quit();
    },
    close() {
      closing = true;
      if (!closed) connection.close();
    },
    send(envelopeFrom, recipient, message) {
      return new Promise<TransactionResult>((outerResolve) => {
        const resolve = (result: TransactionResult) => {
          if (pendingSend !== resolve) return;
          pendingSend = null;
          outerResolve(result);
        };
        pendingSend = resolve;
        if (closed || closing) {
          resolve({
            kind: 'connection_failed',
            reply: localFailure('connection_lost', 'connection closed before the transaction'),
          });
          return;
        }
        const socket = connection._socket;
        // The wait after the final dot may be long (content scanning); commands use the shorter timeout.
        if (socket) socket.setTimeout(options.timeouts.dataTimeoutMs);
        connection.send(
          { from: envelopeFrom, to: [recipient], size: Buffer.byteLength(message) },
          message,
          (error, info) => {
            const current = connection._socket;
            if (current && !closed) current.setTimeout(options.timeouts.commandTimeoutMs);
            if (!error) {
              resolve({ kind: 'accepted', reply: parseSmtpReply(info?.response ?? '250 OK') });
              return;
            }
            const failure = error as NodemailerError;
            const refusal =
              (failure.code === 'EENVELOPE' || failure.code === 'EMESSAGE') &&
              typeof failure.responseCode === 'number' &&
              failure.responseCode !== 421;
            if (refusal && !closed) {
              const reply = parseSmtpReply(failure.response ?? String(failure.responseCode));
              // RSET ends the refused transaction so the connection can carry the next message.
              connection.reset((resetError) => {
                if (resetError) connection.close();
                resolve({ kind: 'rejected', reply });
              });
              return;
            }
            if (refusal) {
              resolve({ kind: 'rejected', reply: parseSmtpReply(failure.response ?? String(failure.responseCode)) });
              return;
            }
            connection.close();
            resolve({ kind: 'connection_failed', reply: replyFromError(failure) });
          },
        );
      });
    },
  };

  return new Promise<OpenResult>((resolve) => {
    let settled = false;
    const settle = (result: OpenResult) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    connection.once('error', (error: NodemailerError) => settle({ kind: 'failed', reply: replyFromError(error) }));
    connection.once('end', () =>
      settle({
        kind: 'failed',
        reply: lastError
          ? replyFromError(lastError)
          : localFailure('connection_lost', 'connection closed before the greeting'),
      }),
    );
    connection.connect((error) => {
      if (error) {
        connection.close();
        settle({ kind: 'failed', reply: replyFromError(error as NodemailerError) });
      } else {
        settle({ kind: 'open', session });
      }
    });
  });
}

/** A connection-level failure as a reply value: the server's own words when it said something (421). */
export function replyFromError(error: NodemailerError): SmtpReply {
  if (error.response && /^[45]\d\d/.test(error.response)) return parseSmtpReply(error.response);
  return localFailure(localFailureOf(error), error.message);
}

function localFailureOf(error: NodemailerError): LocalFailure {
  const system = error.originalCode ?? '';
  if (system === 'ECONNREFUSED') return 'connection_refused';
  if (error.code === 'ETIMEDOUT' || system === 'ETIMEDOUT') return 'timeout';
  if (error.code === 'ETLS') return 'tls_failed';
  if (error.code === 'EPROTOCOL') return 'protocol_error';
  return 'connection_lost';
}
