import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

// A validated pack turned into the file a running role already watches. Writing goes through a
// temporary file in the same directory and a rename (atomic on POSIX), so a watcher never reads half
// a file. All temporaries are written first, then renamed, so a failure while writing changes nothing.

export interface PackTarget {
  file: string;
  content: string;
}

export type TargetResult = { ok: true; target: PackTarget } | { ok: false; issues: string[] };

export function materializeHeader(kind: string, version: string, source: string): string {
  return `# Written by the deliverability-update workflow: ${kind} rules version ${version} from ${source.replace(/[\r\n]/g, ' ')}.\n# Do not edit: the next update or \`herald rules rollback\` replaces it (docs/deliverability-update.md).\n`;
}

export function writeTargets(targets: readonly PackTarget[]): void {
  const temporaries: Array<{ temporary: string; file: string }> = [];
  try {
    for (const target of targets) {
      mkdirSync(dirname(target.file), { recursive: true });
      const temporary = `${target.file}.${process.pid}.${Date.now()}.tmp`;
      writeFileSync(temporary, target.content);
      temporaries.push({ temporary, file: target.file });
    }
  } catch (error) {
    for (const { temporary } of temporaries) rmSync(temporary, { force: true });
    throw error;
  }
  for (const { temporary, file } of temporaries) renameSync(temporary, file);
}

export function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}
