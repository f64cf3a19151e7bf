import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../common/errors.ts';
import { maskUrl } from '../common/mask-url.ts';
import { fetchManifestSource, type FetchOptions } from './http-source.ts';
import type { RuleKind } from '../store/tables.ts';

// Where an update's packs come from: a directory with mx.yaml and/or bounce.yaml, or an HTTP(S)
// manifest naming them. Either kind may be absent (that kind is left as it is).

export interface PackFile {
  kind: RuleKind;
  /** The file path or URL: used in file:line messages and stored with the version. */
  name: string;
  text: string;
}

export interface SourceFiles {
  source: string;
  files: PackFile[];
}

export const packFileNames: Record<RuleKind, string[]> = {
  mx: ['mx.yaml', 'mx.yml'],
  bounce: ['bounce.yaml', 'bounce.yml'],
};

export async function readRuleSource(source: string, options: FetchOptions): Promise<SourceFiles> {
  if (/^https?:\/\//i.test(source)) return fetchManifestSource(source, options);
  // The server's files are the operator's: an API client naming a directory could probe them.
  if (options.destinations)
    throw new AppError(
      'INPUT_INVALID',
      `source: "${source.slice(0, 200)}" is not an http(s) URL; a directory is read by herald rules update --source on the server`,
    );
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source))
    throw new AppError(
      'CONFIG_INVALID',
      `deliverability.source: "${maskUrl(source)}" is neither a directory nor an https:// URL`,
    );
  return readDirectorySource(source, options.maxFileBytes);
}

export function readDirectorySource(directory: string, maxFileBytes: number): SourceFiles {
  let isDirectory = false;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch (error) {
    throw new AppError('RULES_SOURCE_UNAVAILABLE', `rule source ${directory}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!isDirectory) throw new AppError('RULES_SOURCE_UNAVAILABLE', `rule source ${directory} is not a directory`);
  const files: PackFile[] = [];
  for (const kind of ['mx', 'bounce'] as const) {
    const found = packFileNames[kind].map((name) => join(directory, name)).filter((file) => isFile(file));
    if (found.length > 1)
      throw new AppError(
        'RULES_INVALID',
        `rule source ${directory} has both ${packFileNames[kind].join(' and ')}: keep one`,
      );
    const file = found[0];
    if (!file) continue;
    const size = statSync(file).size;
    if (size > maxFileBytes)
      throw new AppError(
        'INPUT_TOO_LARGE',
        `${file}: ${size} bytes, more than deliverability.maxFileBytes (${maxFileBytes})`,
      );
    files.push({ kind, name: file, text: readFileSync(file, 'utf8') });
  }
  if (files.length === 0)
    throw new AppError(
      'RULES_SOURCE_UNAVAILABLE',
      `rule source ${directory} has no ${[...packFileNames.mx, ...packFileNames.bounce].join(', ')}`,
    );
  return { source: directory, files };
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
