import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { expect, it } from 'vitest';
import { parse } from 'yaml';

// Issue 13 item 8: `herald sim start` runs the ISP simulator as a process and prints the herald.yaml
// lines that send to it; Ctrl-C (SIGINT) or SIGTERM stops it cleanly.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');
const env = { ...process.env, HERALD_DATABASE_URL: '', HERALD_CONFIG: '' };

function startSim(args: string[]) {
  const child = spawn(process.execPath, [heraldBin, 'sim', 'start', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  child.stderr.on('data', (chunk) => stderr.push(String(chunk)));
  const running = new Promise<void>((resolveRunning, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
    child.stderr.on('data', (chunk) => {
      if (String(chunk).includes('simulator running')) resolveRunning();
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr.join('')}`)));
  });
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return { child, lines, stderr, running, exited };
}

it('prints herald.yaml lines that reach its SMTP hosts, and stops on SIGINT with exit 0', async () => {
  const sim = startSim([]);
  await sim.running;
  const yaml = parse(sim.lines.filter((line) => !line.startsWith('#')).join('\n')) as {
    mta: { resolverServers: string[]; routes: Array<{ match: string; host: string; port: number }> };
  };
  expect(yaml.mta.resolverServers[0]).toMatch(/^127\.0\.0\.1:\d+$/);
  const accept = yaml.mta.routes.find((route) => route.match === 'mx.accept.test')!;
  const greeting = await new Promise<string>((resolveGreeting, reject) => {
    const socket = connect(accept.port, accept.host);
    socket.once('data', (data) => {
      socket.destroy();
      resolveGreeting(String(data));
    });
    socket.once('error', reject);
  });
  expect(greeting).toMatch(/^220 /);
  sim.child.kill('SIGINT');
  expect(await sim.exited).toBe(0);
  expect(sim.stderr.join('')).toContain('simulator stopped: 0 messages accepted');
}, 60_000);

it('--json prints one object with the resolver, the routes and the domains', async () => {
  const sim = startSim(['--json']);
  await sim.running;
  const settings = JSON.parse(sim.lines[0]!) as {
    dnsServer: string;
    routes: unknown[];
    domains: Array<{ name: string }>;
  };
  expect(settings.routes.length).toBeGreaterThan(5);
  expect(settings.domains.map((d) => d.name)).toContain('accept.test');
  sim.child.kill('SIGTERM');
  expect(await sim.exited).toBe(0);
}, 60_000);
