import type { Herald } from '../main.ts';
import { diagnose, doctorChecks, type Diagnosis } from './checks.ts';
import { doctorSettings } from './finding.ts';
import { readDoctorSnapshot } from './read-snapshot.ts';

// The doctor's edge: reads the platform's state once (read-only) and runs every check over it.
// Used by `herald doctor` and at the end of `herald demo`.

export interface DoctorRun extends Diagnosis {
  checkedAt: string;
  /** Unfinished deliveries older than the 200 newest: not read, so not checked. */
  deliveriesNotChecked: number;
}

export async function runDoctor(
  herald: Herald,
  options: {
    deliveryId?: number /** The demo's simulator setup is unsafe for real mail by design. */;
    skipConfiguration?: boolean;
    /** The roles the open-files check counts (`herald doctor --roles`); absent: every role. */
    roles?: readonly string[];
  } = {},
): Promise<DoctorRun> {
  const now = herald.clock.now();
  const settings = doctorSettings(herald.config);
  const scope = options.deliveryId !== undefined ? { deliveryId: options.deliveryId } : {};
  const snapshot = await readDoctorSnapshot({
    store: herald.store,
    config: herald.config,
    settings,
    now,
    ...scope,
    skipConfiguration: options.skipConfiguration === true,
    ...(options.roles && { roles: options.roles }),
  });
  const checks = options.skipConfiguration ? doctorChecks.filter((c) => c.name !== 'configuration') : doctorChecks;
  return {
    checkedAt: new Date(now).toISOString(),
    ...diagnose(snapshot, now, settings, { ...scope, checks }),
    deliveriesNotChecked: options.deliveryId === undefined ? (snapshot.deliveriesNotRead ?? 0) : 0,
  };
}
