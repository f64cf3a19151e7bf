import { createAddressPredicate } from '../audience/address.ts';
import type { Herald } from '../main.ts';
import { forwardOperatorAction, type ForwardResult } from '../midsourcing/state-forward.ts';
import type { DeliveryRow } from '../store/tables.ts';
import { pauseDelivery, resumeDelivery, stopDelivery } from './lifecycle.ts';
import { preparationStore, prepareDelivery, type PreparationOutcome } from './preparation.ts';

// The operator's actions on one delivery as the CLI and the API both run them: the configured
// preparation, and pause/resume/stop followed by their forwarding to the execution instance of a
// pushed delivery (mid-sourcing).

export type OperatorAction = 'pause' | 'resume' | 'stop';

const actions = { pause: pauseDelivery, resume: resumeDelivery, stop: stopDelivery } as const;

export async function actOnDelivery(
  herald: Herald,
  id: number,
  action: OperatorAction,
): Promise<{ row: DeliveryRow; forwarding: ForwardResult }> {
  const row = await actions[action](herald.store, id, herald.clock.now());
  // Mid-sourcing: the execution instance holding the parts must pause, resume or stop too.
  const forwarding = await forwardOperatorAction(herald.store, herald.config.midsourcing, row.id, {
    clock: herald.clock,
  });
  return { row, forwarding };
}

export async function prepareConfigured(
  herald: Herald,
  id: number,
  onProgress?: (progress: { read: number; prepared: number }) => void,
  /** Ctrl-C/SIGTERM: the preparation stops at its next batch and rolls back (INTERRUPTED). */
  signal?: AbortSignal,
): Promise<PreparationOutcome> {
  return prepareDelivery(
    preparationStore(herald.store, { foldLocalPartCase: herald.config.delivery.foldLocalPartCase }),
    id,
    {
      batchSize: herald.config.delivery.preparationBatchSize,
      clock: herald.clock,
      isValidAddress: createAddressPredicate(),
      leaseMs: herald.config.delivery.preparationLeaseSeconds * 1000,
      importLeaseMs: herald.config.import.leaseSeconds * 1000,
      ...(onProgress && { onProgress }),
      ...(signal && { signal }),
    },
  );
}
