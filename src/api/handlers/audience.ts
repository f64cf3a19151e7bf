import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Static } from '@sinclair/typebox';
import { getImport, listLists, listRejects } from '../../audience/audience-store.ts';
import { importRecipients } from '../../audience/csv-import.ts';
import { AppError } from '../../common/errors.ts';
import { keysetPage, rowsToRead } from '../keyset-page.ts';
import type { ApiContext, HandlerInput } from '../route.ts';
import type * as S from '../schemas.ts';

// Lists and CSV imports through the API. An upload is streamed to a private temporary file (never
// held in memory, bounded by import.maxFileBytes), then imported by the same `importRecipients` as
// `herald import recipients`: the answer is 202 with the import id once the header is read; progress
// and rejects (by line) are read from /imports/{id}.

export async function lists({ herald }: ApiContext) {
  const rows = await listLists(herald.store);
  return {
    lists: rows.map((l) => ({
      id: l.id,
      name: l.name,
      recipients: l.recipients,
      createdAt: new Date(l.createdAt).toISOString(),
    })),
  };
}

export async function upload(
  context: ApiContext,
  { params, query, request }: HandlerInput<Static<typeof S.nameParams>, Static<typeof S.importQuery>, unknown>,
) {
  const { herald } = context;
  const limit = herald.config.import.maxFileBytes;
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit)
    throw new AppError('CSV_TOO_LARGE', `the upload is ${declared} bytes, over import.maxFileBytes (${limit})`);
  const dir = mkdtempSync(join(tmpdir(), 'herald-upload-'));
  const file = join(dir, query.file ?? 'upload.csv');
  try {
    let bytes = 0;
    const bound = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        if (bytes > limit)
          done(new AppError('CSV_TOO_LARGE', `the upload is over import.maxFileBytes (${limit} bytes)`));
        else done(null, chunk);
      },
    });
    await pipeline(request.body as Readable, bound, createWriteStream(file, { mode: 0o600 }));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const started = new Promise<number>((resolve, reject) => {
    const run = importRecipients({
      store: herald.store,
      file,
      list: params.name,
      clock: herald.clock,
      maxFileBytes: limit,
      maxRecordBytes: herald.config.import.maxRecordBytes,
      // The lease it renews, and by which it judges other running imports dead: the CLI's, from config.
      leaseMs: herald.config.import.leaseSeconds * 1000,
      onStarted: resolve,
    }).finally(() => rmSync(dir, { recursive: true, force: true }));
    // Before the header is read a failure is the request's (400); after, the import row records it.
    run.catch((error) => {
      reject(error);
      herald.logger.warn({ err: error, list: params.name }, 'API import failed');
    });
    context.track(run.catch(() => {}));
  });
  const importId = await started;
  return importView(herald, importId);
}

export async function showImport(
  { herald }: ApiContext,
  { params }: HandlerInput<Static<typeof S.idParams>, unknown, unknown>,
) {
  return importView(herald, params.id);
}

export async function rejects(
  { herald }: ApiContext,
  { params, query }: HandlerInput<Static<typeof S.idParams>, { after?: number; limit?: number }, unknown>,
) {
  if (!(await getImport(herald.store, params.id))) throw new AppError('NOT_FOUND', `no import ${params.id}`);
  const limit = Math.min(query.limit ?? 100, herald.config.api.maxPageSize);
  const rows = await listRejects(herald.store, params.id, { afterId: query.after ?? 0, limit: rowsToRead(limit) });
  const page = keysetPage(rows, limit);
  return {
    items: page.rows.map((r) => ({ line: r.line, reason: r.reason, message: r.message, excerpt: r.excerpt })),
    next: page.next,
  };
}

async function importView(herald: ApiContext['herald'], importId: number) {
  const record = await getImport(herald.store, importId);
  if (!record) throw new AppError('NOT_FOUND', `no import ${importId}`);
  return {
    importId: record.id,
    list: record.list_name,
    file: record.file_name,
    state: record.state,
    read: record.read_count,
    imported: record.imported_count,
    updated: record.updated_count,
    rejected: record.rejected_count,
    error: record.error,
    startedAt: new Date(record.started_at).toISOString(),
    finishedAt: record.finished_at === null ? null : new Date(record.finished_at).toISOString(),
  };
}
