// `npm run bench`: every benchmark in turn, each in its own process, at the sizes the issues name
// (`--quick` for a fast pass at smaller sizes). Benchmarks print figures; none passes or fails on time.
// PostgreSQL and Redis runs are skipped, with the reason, when those servers are not reachable.
import { spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';

const quick = process.argv.includes('--quick');

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port, timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const postgres = await reachable(5432);
const redis = await reachable(6379);
const sendMessages = quick ? '10000' : '50000';
const recipients = quick ? '100000' : '1000000';

const runs: Array<{ title: string; args: string[]; needs?: 'postgres' | 'redis' | 'postgres+redis' }> = [
  { title: 'send, SQLite', args: ['bench/send.ts', '--messages', sendMessages] },
  {
    title: 'send, SQLite, RSA-2048 DKIM',
    args: ['bench/send.ts', '--messages', sendMessages, '--dkim', 'rsa', '--workers', '1'],
  },
  {
    title: 'send, PostgreSQL',
    args: ['bench/send.ts', '--messages', sendMessages, '--dialect', 'postgres'],
    needs: 'postgres',
  },
  { title: 'prepare, SQLite', args: ['bench/prepare.ts', '--recipients', recipients] },
  {
    title: 'prepare, PostgreSQL',
    args: ['bench/prepare.ts', '--recipients', recipients, '--dialect', 'postgres'],
    needs: 'postgres',
  },
  { title: 'import, SQLite', args: ['bench/import.ts', '--rows', recipients] },
  {
    title: 'import, PostgreSQL',
    args: ['bench/import.ts', '--rows', recipients, '--dialect', 'postgres'],
    needs: 'postgres',
  },
  { title: 'bounce classification', args: ['bench/classify.ts'] },
  { title: 'throttles', args: ['bench/throttle.ts'], needs: 'redis' },
  { title: 'tracking redirect', args: ['bench/redirect.ts'] },
  { title: 'mid-sourcing push', args: ['bench/mid-push.ts', recipients] },
  { title: 'cleanup while writing', args: ['bench/cleanup.ts'] },
  { title: 'simulator sink', args: ['bench/sink-throughput.ts'] },
  { title: 'MX rules reload, 2,000 site rules', args: ['bench/rules-reload.ts'] },
  {
    title: 'scale-out, 2 MTA nodes',
    args: ['bench/scale-out.ts', ...(quick ? ['--messages', '10000', '--limited-messages', '10000'] : [])],
    needs: 'postgres+redis',
  },
  { title: 'dashboard', args: ['bench/dashboard.ts', '--logs', recipients, '--messages', quick ? '5000' : '20000'] },
];

for (const run of runs) {
  console.log(`\n=== ${run.title}: node --import tsx ${run.args.join(' ')}`);
  if (run.needs?.startsWith('postgres') && !postgres) {
    console.log('skipped: PostgreSQL is not reachable on 127.0.0.1:5432');
    continue;
  }
  if (run.needs?.endsWith('redis') && !redis) {
    console.log('skipped: Redis is not reachable on 127.0.0.1:6379');
    continue;
  }
  const result = spawnSync(process.execPath, ['--import', 'tsx', ...run.args], { stdio: 'inherit' });
  if (result.status !== 0) console.log(`(exited with ${result.status ?? result.signal})`);
}
