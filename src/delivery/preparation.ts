import { randomUUID } from 'node:crypto';
import { liveImportOfList } from '../audience/audience-store.ts';
import { AppError, describeError } from '../common/errors.ts';
import type { Clock } from '../common/clock.ts';
import type { Store } from '../store/database.ts';
import { lazySqliteStatementRunner } from '../store/sqlite-statement-runner.ts';
import type { DeliveryRow, DeliveryState, DeliveryUpdate } from '../store/tables.ts';
import { analyzeHtmlTemplate, type ExtractedLink } from '../tracking/links.ts';
import { replaceTrackingLinks } from '../tracking/tracking-store.ts';
import { compileContent, personalizationOf } from './content.ts';
import {
  createPersonalizationCheck,
  type PersonalizationCheck,
  type RecipientProblem,
} from './personalization-check.ts';
import { getDelivery } from './delivery-store.ts';
import { linkWarnings, type PreparationWarning } from './preparation-warnings.ts';
import { transitionDelivery } from './lifecycle.ts';
import {
  analyzeRecipients,
  blockedAddresses,
  deleteDeliveryLogs,
  insertDeliveryLogs,
  receivedFromPeer,
  renewPreparation,
  settlePreparation,
  takeOverPreparation,
  targetBatch,
} from './preparation-store.ts';

// Preparation: target extraction, exclusions, personalization check, then one delivery log per
// recipient — batch by batch, so memory stays flat whatever the size of the target.

export type ExclusionReason = 'invalid_address' | 'duplicate' | 'quarantined' | 'denylisted';

export interface TargetRecipient {
  id: number;
  email: string;
  data: string;
}

/** One batch of the target, as ids: the logs are copied from the recipients inside the database. */
export interface TargetRange {
  listId: number;
  /** Exclusive lower bound and inclusive upper bound of recipient ids. */
  afterId: number;
  lastId: number;
  /** Recipients of the range that were excluded (invalid, quarantined, denylisted). */
  excludedIds: number[];
}

/**
 * What preparation needs from storage (preparationStore below; tests wrap it to slow or break steps).
 * One per preparation: it holds the delivery under its own id while preparing.
 */
export interface PreparationStore {
  /** Conditionally moves the delivery to `preparing`; throws INVALID_STATE when it cannot. */
  beginPreparation(deliveryId: number, now: number): Promise<DeliveryRow>;
  /** The delivery as it is now. */
  current(deliveryId: number): Promise<DeliveryRow>;
  /** Takes over a `preparing` delivery last renewed before `staleBefore` (its process died); false when it is alive or not preparing. */
  takeOver(deliveryId: number, staleBefore: number, now: number): Promise<boolean>;
  /** Back to `to` (edited, or preparation_failed) after an interruption. */
  rollBack(deliveryId: number, to: 'edited' | 'preparation_failed', now: number): Promise<void>;
  /** Removes the logs of an earlier preparation, in bounded batches. */
  deleteLogs(deliveryId: number): Promise<void>;
  /** Records progress (renews updated_at) while the delivery is still `preparing`; false when it no longer is (failed as interrupted meanwhile). */
  recordProgress(deliveryId: number, now: number): Promise<boolean>;
  /** Recipients of the list with id > afterId, in id order. */
  targetBatch(listId: number, afterId: number, limit: number): Promise<TargetRecipient[]>;
  /** The exclusion state of those addresses that are quarantined or denylisted. */
  blockedAddresses(emails: string[]): Promise<Map<string, 'quarantined' | 'denylisted'>>;
  /** Creates the logs of a range's recipients, skipping addresses that already have one in this delivery; returns how many were inserted. */
  insertLogs(deliveryId: number, range: TargetRange, now: number): Promise<number>;
  finishPreparation(
    deliveryId: number,
    result: PreparationCounts,
    warnings: readonly PreparationWarning[],
    now: number,
  ): Promise<void>;
  failPreparation(deliveryId: number, error: string, now: number): Promise<void>;
  /** Stores the HTML template's tracked links in document order (replacing an earlier preparation's). */
  replaceTrackingLinks(deliveryId: number, links: readonly ExtractedLink[]): Promise<void>;
  /** A live import into the list (its lease renewed since `aliveSince`): the list is incomplete until it ends. */
  liveImport(
    listId: number,
    aliveSince: number,
  ): Promise<{ id: number; fileName: string; readCount: number } | undefined>;
  /** The mid-sourcing marketing peer the delivery was received from, if it was. */
  receivedFrom(deliveryId: number): Promise<{ peer: string; sourceDeliveryId: number } | undefined>;
  /** Frees what the preparation held (SQLite: the logs' writer thread); called once it has ended. */
  release(): Promise<void>;
}

/**
 * Preparation's storage functions (delivery/preparation-store.ts) and its state changes, on `store`.
 * `foldLocalPartCase` (delivery.foldLocalPartCase, default true): addresses differing only in the
 * local part's case are one recipient; the domain's case never counts.
 */
export function preparationStore(store: Store, options: { foldLocalPartCase?: boolean } = {}): PreparationStore {
  // SQLite: the logs are written by a worker thread on its own connection, so the next batch is read
  // and checked meanwhile (better-sqlite3 is synchronous). Not for an in-memory database (one connection).
  const writer = lazySqliteStatementRunner(store);
  // This preparation's hold on the delivery: every write, renewal and end is conditional on it, so a
  // process frozen past its lease and taken over (SIGSTOP, a paused VM) changes nothing when it wakes.
  const owner = randomUUID();
  const settle = async (deliveryId: number, to: DeliveryState, now: number, changes: DeliveryUpdate = {}) => {
    if (await settlePreparation(store, deliveryId, owner, { to, now, changes })) return;
    const current = await getDelivery(store, deliveryId);
    throw new AppError(
      'INVALID_STATE',
      `delivery ${deliveryId} is no longer prepared by this process (it is ${current.state}${current.state === 'preparing' ? ', taken over by another process' : ''}): this preparation changed nothing more`,
      { details: { deliveryId, from: current.state, to } },
    );
  };
  return {
    async beginPreparation(deliveryId, now) {
      const delivery = await transitionDelivery(store, deliveryId, 'preparing', now, {
        last_error: null,
        preparation_warnings: '[]',
        preparation_owner: owner,
      });
      await analyzeRecipients(store);
      return delivery;
    },
    async deleteLogs(deliveryId) {
      await deleteDeliveryLogs(store, deliveryId, { whileOwner: owner });
    },
    current: (deliveryId) => getDelivery(store, deliveryId),
    takeOver: (deliveryId, staleBefore, now) => takeOverPreparation(store, deliveryId, staleBefore, now, owner),
    rollBack: (deliveryId, to, now) => settle(deliveryId, to, now),
    recordProgress: (deliveryId, now) => renewPreparation(store, deliveryId, now, owner),
    targetBatch: (listId, afterId, limit) => targetBatch(store, listId, afterId, limit),
    blockedAddresses: (emails) => blockedAddresses(store, emails),
    insertLogs: (deliveryId, range, now) =>
      insertDeliveryLogs(store, deliveryId, range, now, { ...options, runner: writer.get(), owner }),
    async finishPreparation(deliveryId, counts, warnings, now) {
      const excluded = Object.values(counts.excluded).reduce((a, b) => a + b, 0);
      await settle(deliveryId, 'prepared', now, {
        target_count: counts.target,
        excluded_count: excluded,
        exclusions: JSON.stringify(counts.excluded),
        preparation_warnings: JSON.stringify(warnings),
        prepared_at: now,
      });
    },
    failPreparation: (deliveryId, error, now) =>
      settle(deliveryId, 'preparation_failed', now, { last_error: error.slice(0, 4_000) }),
    replaceTrackingLinks: (deliveryId, links) => replaceTrackingLinks(store, deliveryId, links),
    liveImport: (listId, aliveSince) => liveImportOfList(store, listId, aliveSince),
    receivedFrom: (deliveryId) => receivedFromPeer(store, deliveryId),
    release: () => writer.close(),
  };
}

export interface PreparationCounts {
  target: number;
  prepared: number;
  excluded: Record<ExclusionReason, number>;
}

export interface PrepareOptions {
  batchSize: number;
  clock: Clock;
  /** The address check of the audience import (kept as a parameter: preparation re-checks old lists too). */
  isValidAddress(email: string): boolean;
  onProgress?(progress: { read: number; prepared: number }): void;
  /** Aborted (Ctrl-C, SIGTERM): stops before the next batch, removes the logs, back to the previous state. */
  signal?: AbortSignal;
  /**
   * The liveness lease: renewed every third of it while preparing; a `preparing` delivery not renewed
   * for this long belongs to a process that died, and preparing it again takes it over at once.
   */
  leaseMs?: number;
  /** import.leaseSeconds × 1000: an import into the list renewed within it is live, and preparation waits for it. */
  importLeaseMs?: number;
}

export type PreparationOutcome =
  | { kind: 'prepared'; deliveryId: number; counts: PreparationCounts; warnings: PreparationWarning[] }
  | { kind: 'failed'; deliveryId: number; error: string; code: string };

/** `{{ mirror_url }}` is set per message by the MTA (tracking decorator); the check needs a value. */
export const mirrorUrlPreview = 'https://tracking.invalid/m/preview';

export async function prepareDelivery(
  store: PreparationStore,
  deliveryId: number,
  options: PrepareOptions,
): Promise<PreparationOutcome> {
  const leaseMs = options.leaseMs ?? 30_000;
  const { delivery, previous } = await begin(store, deliveryId, options.clock.now(), {
    leaseMs,
    importLeaseMs: options.importLeaseMs ?? 60_000,
  });
  // The lease is renewed by a timer as well as by each batch: a long batch never looks dead.
  const heartbeat = setInterval(
    () => void store.recordProgress(deliveryId, options.clock.now()).catch(() => {}),
    Math.max(1_000, leaseMs / 3),
  );
  heartbeat.unref();
  try {
    if (delivery.list_id === null)
      throw new AppError('DELIVERY_NO_TARGET', `delivery ${deliveryId} has no target list`);
    await store.deleteLogs(deliveryId);
    const templates = {
      subject: delivery.subject_template,
      html: delivery.html_template,
      text: delivery.text_template,
    };
    // Parsed first: a syntax error is reported before anything is written.
    compileContent(templates);
    // Link indexes are fixed here; tracked URLs carry them and the redirect looks them up.
    const analysis = delivery.html_template === null ? null : analyzeHtmlTemplate(delivery.html_template);
    await store.replaceTrackingLinks(deliveryId, analysis?.links ?? []);
    // Checked as the MTA renders it: the HTML with its tracked links marked.
    const check = createPersonalizationCheck(
      templates,
      compileContent({ ...templates, html: analysis?.markedTemplate ?? null }),
      analysis?.links ?? [],
      analysis ?? {},
    );
    const counts = await prepareBatches(store, delivery.id, delivery.list_id, check, options);
    if (counts.target === 0)
      throw new AppError('DELIVERY_NO_TARGET', `delivery ${deliveryId}: its list has no recipients`);
    const warnings = linkWarnings(check.refusedLinks());
    await store.finishPreparation(deliveryId, counts, warnings, options.clock.now());
    return { kind: 'prepared', deliveryId, counts, warnings };
  } catch (error) {
    // Nothing half-done: the logs of a failed preparation are removed, so nothing can be sent from it.
    await store.deleteLogs(deliveryId);
    if (options.signal?.aborted) {
      const state = previous === 'preparation_failed' ? 'preparation_failed' : 'edited';
      await store.rollBack(deliveryId, state, options.clock.now());
      throw new AppError(
        'INTERRUPTED',
        `preparation of delivery ${deliveryId} interrupted: rolled back, its logs removed, the delivery is ${state} again; run \`herald delivery prepare ${deliveryId}\` to prepare it`,
        { details: { deliveryId, state } },
      );
    }
    // The delivery left `preparing` under this preparation (delivery-manager failed it as interrupted):
    // its state and last_error are someone else's now.
    if (error instanceof AppError && error.code === 'INVALID_STATE') throw error;
    const message = describeError(error);
    await store.failPreparation(deliveryId, message, options.clock.now());
    if (!(error instanceof AppError)) throw error;
    return { kind: 'failed', deliveryId, error: error.message, code: error.code };
  } finally {
    clearInterval(heartbeat);
    await store.release();
  }
}

/**
 * A list an import is applying rows to (or still reading for) holds part of its file, or none: a
 * delivery prepared from it would silently miss the rest. Refused with nothing changed; an import
 * whose process died (lease not renewed) does not hold preparation back.
 */
async function refuseWhileImporting(store: PreparationStore, delivery: DeliveryRow, aliveSince: number) {
  if (delivery.list_id === null) return;
  const importing = await store.liveImport(delivery.list_id, aliveSince);
  if (importing)
    throw new AppError(
      'INVALID_STATE',
      `delivery ${delivery.id}: its list is being imported into (import ${importing.id}, ${importing.fileName}, ${importing.readCount} rows read so far); prepare it once the import has finished, or the delivery misses the rows still to come`,
      { details: { deliveryId: delivery.id, listId: delivery.list_id, importId: importing.id } },
    );
}

/**
 * A delivery received from a mid-sourcing marketing peer has no list here: its recipients are the
 * parts the peer pushed. Preparing it took it over, deleted the received recipients and failed it
 * (no target list) — and a received delivery waits in `preparing` for its parts, which the doctor
 * reported as a dead preparation to take over. Refused with nothing changed.
 */
async function refuseReceived(store: PreparationStore, deliveryId: number) {
  const received = await store.receivedFrom(deliveryId);
  if (received)
    throw new AppError(
      'INVALID_STATE',
      `delivery ${deliveryId} was received from the mid-sourcing peer "${received.peer}" (its delivery ${received.sourceDeliveryId}): its recipients are the parts that instance pushes, it is not prepared here; resume the push there (\`herald mid push ${received.sourceDeliveryId}\`), or stop it there`,
      { details: { deliveryId, peer: received.peer, sourceDeliveryId: received.sourceDeliveryId } },
    );
}

/**
 * Moves the delivery to `preparing`, unless its list is being imported into. A delivery already `preparing` whose lease ran out (no renewal
 * for leaseMs: its process died) is taken over at once instead of waiting for delivery-manager.
 */
async function begin(
  store: PreparationStore,
  deliveryId: number,
  now: number,
  { leaseMs, importLeaseMs }: { leaseMs: number; importLeaseMs: number },
): Promise<{ delivery: DeliveryRow; previous: DeliveryRow['state'] }> {
  const before = await store.current(deliveryId);
  await refuseReceived(store, deliveryId);
  await refuseWhileImporting(store, before, now - importLeaseMs);
  if (before.state === 'preparing') {
    if (!(await store.takeOver(deliveryId, now - leaseMs, now)))
      throw new AppError(
        'INVALID_STATE',
        `delivery ${deliveryId} is being prepared by a live process (renewed within the last ${Math.round(leaseMs / 1000)} s); wait for it to finish, or stop it with Ctrl-C`,
        { details: { deliveryId, from: 'preparing', to: 'preparing' } },
      );
    // Its process died: taken over, the rest of a preparation (logs deleted first) follows as usual.
    return { delivery: await store.current(deliveryId), previous: 'edited' };
  }
  return { delivery: await store.beginPreparation(deliveryId, now), previous: before.state };
}

async function prepareBatches(
  store: PreparationStore,
  deliveryId: number,
  listId: number,
  check: PersonalizationCheck,
  options: PrepareOptions,
): Promise<PreparationCounts> {
  const counts: PreparationCounts = {
    target: 0,
    prepared: 0,
    excluded: { invalid_address: 0, duplicate: 0, quarantined: 0, denylisted: 0 },
  };
  let afterId = 0;
  let next = store.targetBatch(listId, afterId, options.batchSize);
  // One batch is written at a time, in list order, while the next one is read and its exclusions are
  // looked up; whether the delivery is still preparing is checked right before each write.
  let writing = Promise.resolve();
  try {
    for (;;) {
      const batch = await next;
      if (options.signal?.aborted) throw new Error('interrupted');
      if (batch.length === 0) {
        await writing;
        return counts;
      }
      const range: TargetRange = { listId, afterId, lastId: batch[batch.length - 1]!.id, excludedIds: [] };
      afterId = range.lastId;
      // Read the next batch while this one is checked and written (PostgreSQL works on it meanwhile).
      next = store.targetBatch(listId, afterId, options.batchSize);
      next.catch(() => {});
      counts.target += batch.length;
      // The quarantine keys addresses in lower case: `Ann@Example.com` is excluded when ann@example.com is.
      const keys = batch.map((r) => r.email.toLowerCase());
      const blocked = await store.blockedAddresses(keys);
      const problems: RecipientProblem[] = [];
      let problemsBeyond = 0;
      for (const [index, recipient] of batch.entries()) {
        if (!options.isValidAddress(recipient.email)) {
          counts.excluded.invalid_address++;
          range.excludedIds.push(recipient.id);
          continue;
        }
        const block = blocked.get(keys[index]!);
        if (block) {
          counts.excluded[block]++;
          range.excludedIds.push(recipient.id);
          continue;
        }
        // Every recipient, before anything is sent (personalization-check.ts says what it renders).
        const data = personalizationOf(recipient.email, recipient.data);
        data.mirror_url = mirrorUrlPreview;
        if (problems.length < maxProblemsListed) problems.push(...check.check(recipient.email, data));
        else problemsBeyond += check.check(recipient.email, data).length > 0 ? 1 : 0;
      }
      if (problems.length > 0) throw personalizationError(problems, problemsBeyond);
      await writing;
      if (!(await store.recordProgress(deliveryId, options.clock.now()))) {
        throw new AppError(
          'INVALID_STATE',
          `delivery ${deliveryId} is no longer preparing (failed as interrupted meanwhile); preparation stopped, its logs removed: run \`herald delivery prepare ${deliveryId}\` again`,
          {
            details: { deliveryId },
          },
        );
      }
      // Numbers only: the batch itself is not kept alive while it is written.
      const read = counts.target;
      const kept = batch.length - range.excludedIds.length;
      writing = store.insertLogs(deliveryId, range, options.clock.now()).then((inserted) => {
        counts.excluded.duplicate += kept - inserted;
        counts.prepared += inserted;
        options.onProgress?.({ read, prepared: counts.prepared });
      });
      // Its failure is thrown where it is awaited: before the next write, or at the end.
      writing.catch(() => {});
    }
  } finally {
    // No exit while a write is on its way: a failed preparation's logs are removed after this returns.
    await writing.catch(() => {});
  }
}

/** Problems listed in a failed preparation's error; the rest of the batch is counted. */
const maxProblemsListed = 20;

/** One error listing the first problems of the batch (template, line, recipient, value), the first one's code. */
function personalizationError(problems: RecipientProblem[], beyond: number): AppError {
  const listed = problems.slice(0, maxProblemsListed);
  const more = problems.length - listed.length + beyond;
  const first = listed[0]!;
  const recipients = new Set(listed.map((p) => p.recipient)).size + beyond;
  const header =
    listed.length === 1 && more === 0
      ? ''
      : `personalization fails for ${recipients} recipient(s) of one batch (${more > 0 ? `the first ${listed.length} problems listed` : 'all listed'}):\n`;
  return new AppError('TEMPLATE_RENDER', header + listed.map((p) => p.message).join('\n'), {
    details: { template: first.template, line: first.line, recipient: first.recipient, problems: listed },
  });
}
