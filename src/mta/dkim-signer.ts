import { signMessage, type DkimKey } from './dkim.ts';

// Where DKIM signatures are computed: on the main thread (mta.dkimWorkers: 0) or in worker threads
// (dkim-workers.ts, the default), behind one interface so the queue runner does not care.

export interface DkimSigner {
  /** DKIM-Signature header lines for the message, in the order they go on top of it. */
  sign(headers: readonly string[], body: string, keys: readonly DkimKey[], nowMs: number): string[] | Promise<string[]>;
  close(): Promise<void>;
}

export const mainThreadSigner: DkimSigner = {
  sign: signMessage,
  close: async () => {},
};
