import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { once } from 'node:events';

// Another process holding a SQLite file's write lock (BEGIN IMMEDIATE, nothing written) until
// release(): what `herald db maintain`, an import or a script does to every other writer.

const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3');

export async function holdSqliteWriteLock(file: string): Promise<{ release(): Promise<void> }> {
  const program = `
    const Database = require(${JSON.stringify(betterSqlite3)});
    const db = new Database(${JSON.stringify(file)});
    db.exec('begin immediate');
    process.stdout.write('locked\\n');
    process.stdin.once('data', () => { db.exec('commit'); db.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['-e', program], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')])) as [Buffer | number];
  if (!Buffer.isBuffer(line) || !line.toString().startsWith('locked'))
    throw new Error(`the lock holder for ${file} exited before taking the lock (${String(line)})`);
  return {
    async release() {
      const exited = once(child, 'exit');
      child.stdin!.write('release\n');
      await exited;
    },
  };
}
