import type { Mta } from '../../src/mta/queue-runner.ts';

/** Starts the MTA, waits until nothing it can send is due, and stops it even when the wait fails. */
export async function drainMta(mta: Pick<Mta, 'start' | 'drain' | 'stop'>): Promise<void> {
  await mta.start();
  try {
    await mta.drain();
  } finally {
    await mta.stop();
  }
}
