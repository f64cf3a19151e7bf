import { describeError } from '../common/errors.ts';
import { personalizationOf } from '../delivery/content.ts';
import type { CachedDelivery } from './content-cache.ts';
import type { DkimKey } from './dkim.ts';
import type { MtaTimings } from './timings.ts';
import { mainThreadSigner, type DkimSigner } from './dkim-signer.ts';
import { createWorkerSigner, type SigningWorkers } from './dkim-workers.ts';
import {
  createMessageBuilder,
  sanitizeHeaderValue,
  serializeMessage,
  verpAddress,
  type MessageInput,
} from './message-builder.mjs';
import type { ClaimedLog } from './mta-store.ts';

// One recipient's message, right before it is sent: personalization (Liquid, compiled once per
// delivery), tracking decoration (links, open pixel, List-Unsubscribe), MIME, DKIM. With signing
// workers, a signed message's MIME, DKIM and SMTP encoding are the worker's (dkim-workers.ts): this
// thread keeps personalization and decoration, and gets the bytes to send.

export type ReadyDelivery = Extract<CachedDelivery, { kind: 'ready' }>;

export type AssembledMessage =
  | {
      kind: 'message';
      envelopeFrom: string;
      recipient: string;
      /** The message, or (built and signed in a worker) its SMTP DATA bytes, ready to write. */
      data: string | Uint8Array;
    }
  /** The delivery's content failed for this recipient (a template error): not the address's fault. */
  | { kind: 'content_error'; error: string };

export interface MessageAssemblyOptions {
  /** Parsed DKIM keys by From domain. */
  dkimKeys: Map<string, DkimKey[]>;
  /** Where signatures are computed; absent = `dkimWorkers` worker threads, or the main thread when 0. */
  dkimSigner?: DkimSigner;
  dkimWorkers: number;
  /** VERP domain of the envelope sender. */
  bounceDomain: string;
  /** The signed VERP envelope sender (src/bounce/verp.ts); default unsigned. */
  envelopeSender?(logId: number, bounceDomain: string): string;
  /** DKIM signing time (metrics); with worker threads it includes building the message and the wait for a free worker. */
  timings?: Pick<MtaTimings, 'dkimSigning'>;
}

export interface MessageAssembler {
  /** Starts the DKIM worker threads (when used); an assembler never started leaks none. */
  start(): void;
  assemble(log: ClaimedLog, delivery: ReadyDelivery, now: number): Promise<AssembledMessage>;
  /** Whether assembling waits for a signer off this thread (workers, or a given signer): then it is worth starting ahead of the message's turn. */
  readonly waitsForSigner: boolean;
  /** Ends the worker threads (or the given signer). */
  close(): Promise<void>;
}

export function createMessageAssembler(options: MessageAssemblyOptions): MessageAssembler {
  const { dkimKeys } = options;
  const allKeys = [...dkimKeys.values()].flat();
  const useWorkers = !options.dkimSigner && options.dkimWorkers > 0 && allKeys.length > 0;
  const signer: DkimSigner = options.dkimSigner ?? mainThreadSigner;
  let workers: SigningWorkers | null = null;
  const envelopeSender = options.envelopeSender ?? verpAddress;
  const builder = createMessageBuilder({ envelopeSender });

  return {
    waitsForSigner: useWorkers || options.dkimSigner !== undefined,
    start() {
      if (useWorkers) workers = createWorkerSigner(allKeys, options.dkimWorkers);
    },
    async assemble(log, delivery, now) {
      const { content, compiled, decoration } = delivery;
      let rendered;
      let extraHeaders: string[] = [];
      try {
        const data = personalizationOf(log.email, log.data);
        if (decoration) Object.assign(data, decoration.variables(log.id, now));
        rendered = compiled.render(data, log.email);
        if (decoration) {
          const decorated = decoration.decorate(log.id, rendered.html, now);
          rendered = { ...rendered, html: decorated.html };
          extraHeaders = decorated.headers;
        }
      } catch (error) {
        return { kind: 'content_error', error: describeError(error) };
      }
      const input: MessageInput = {
        logId: log.id,
        fromAddress: content.fromAddress,
        fromName: content.fromName,
        replyTo: content.replyTo,
        to: log.email,
        subject: rendered.subject,
        html: rendered.html,
        text: rendered.text,
        date: now,
        bounceDomain: options.bounceDomain,
      };
      const keys = dkimKeys.get(content.fromAddress.slice(content.fromAddress.lastIndexOf('@') + 1).toLowerCase());
      // No worker left (none could start): this thread signs, slower, rather than nothing being sent.
      if (keys && workers?.available) {
        const started = performance.now();
        const data = await workers.signedMessageData(input, extraHeaders, keys, now);
        options.timings?.dkimSigning((performance.now() - started) / 1000);
        const recipient = sanitizeHeaderValue(log.email);
        return { kind: 'message', envelopeFrom: envelopeSender(log.id, options.bounceDomain), recipient, data };
      }
      const message = builder.build(input);
      // Tracking headers (List-Unsubscribe, RFC 8058) go in before DKIM signing, which covers them.
      if (extraHeaders.length > 0) message.headers.push(...extraHeaders);
      let signatures: string[] = [];
      if (keys) {
        const started = performance.now();
        signatures = await signer.sign(message.headers, message.body, keys, now);
        options.timings?.dkimSigning((performance.now() - started) / 1000);
      }
      const headers = signatures.length > 0 ? [...signatures, ...message.headers] : message.headers;
      return {
        kind: 'message',
        envelopeFrom: message.envelopeFrom,
        recipient: message.recipient,
        data: serializeMessage(headers, message.body),
      };
    },
    async close() {
      await (workers ?? signer).close();
      workers = null;
    },
  };
}
