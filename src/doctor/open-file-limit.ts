import { readFile } from 'node:fs/promises';
import { parseOpenFileLimit, type OpenFileLimit } from './check-open-files.ts';

// The adapter of check-open-files.ts: this process's soft RLIMIT_NOFILE. Node has no getrlimit();
// Linux shows it in /proc/self/limits. Elsewhere the check says it could not be made.

export async function readOpenFileLimit(
  platform: NodeJS.Platform = process.platform,
  path = '/proc/self/limits',
): Promise<OpenFileLimit> {
  if (platform !== 'linux')
    return { kind: 'unknown', reason: `the limit is read from /proc/self/limits, which ${platform} does not have` };
  try {
    return parseOpenFileLimit(await readFile(path, 'utf8'));
  } catch (error) {
    return { kind: 'unknown', reason: `${path} could not be read (${(error as Error).message})` };
  }
}
