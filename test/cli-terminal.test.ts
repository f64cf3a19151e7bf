import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { formatDeliveryProgress } from '../src/cli/start-progress.ts';
import { createLogger } from '../src/common/logger.ts';
import { createStatusLine } from '../src/common/status-line.ts';
import { mergeSnapshots } from '../src/shaping/stats-view.ts';

// Issue 13 item 5: output a person can read. Logs are human-formatted on a terminal and JSON
// otherwise, never break a live progress line; `herald … | head` exits quietly.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');
const run = promisify(execFile);
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const env = { ...process.env, HERALD_DATABASE_URL: '', HERALD_CONFIG: '', HERALD_LOG_LEVEL: 'info', CI: '' };

function fakeTerminal(): { stream: NodeJS.WriteStream; written: string[] } {
  const written: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      written.push(chunk.toString());
      callback();
    },
  }) as unknown as NodeJS.WriteStream;
  (stream as { isTTY?: boolean }).isTTY = true;
  return { stream, written };
}

describe('logs on a terminal', () => {
  it('are human-formatted and redraw the live line below them', () => {
    const { stream, written } = fakeTerminal();
    const statusLine = createStatusLine(stream);
    const logger = createLogger({ statusLine, level: 'info' });
    statusLine.set('sent 10  failed 0  pending 90');
    logger.warn({ deliveryId: 4 }, 'delivery slowed down');
    const text = written.join('');
    expect(text).not.toContain('{"level"');
    expect(text).toMatch(/\r\u001b\[K\[\d\d:\d\d:\d\d\.\d{3}\] .*WARN.*: .*delivery slowed down.*deliveryId.*4.*\n/);
    expect(text.endsWith('sent 10  failed 0  pending 90')).toBe(true);
  });

  it('stay JSON with --log-format json, still above the live line', () => {
    const { stream, written } = fakeTerminal();
    const statusLine = createStatusLine(stream);
    const logger = createLogger({ statusLine, level: 'info', format: 'json' });
    statusLine.set('progress');
    logger.info({ deliveryId: 4 }, 'delivery finished');
    const text = written.join('');
    const record = text.slice(text.indexOf('{'), text.indexOf('\n', text.indexOf('{')));
    expect(JSON.parse(record)).toMatchObject({ level: 30, msg: 'delivery finished', deliveryId: 4 });
    expect(text.endsWith('\nprogress')).toBe(true);
  });
});

describe.skipIf(!hasScript)('the demo under a pseudo-terminal', () => {
  it('shows a live progress line, human logs, and no JSON log line inside the progress output', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'herald-pty-'));
    const { stdout } = await run(
      'script',
      ['-qec', `${process.execPath} ${heraldBin} demo --recipients 300 --validity-seconds 3`, '/dev/null'],
      { cwd, env, timeout: 120_000 },
    );
    expect(stdout).not.toContain('{"level"');
    expect(stdout).toMatch(/\r\u001b\[Ksent \d+ {2}failed \d+ {2}pending \d+/);
    // The MTA logs "delivery finished" while the progress line is live: erased, logged, redrawn.
    expect(stdout).toMatch(/\r\u001b\[K\[[\d:.]+\] .*INFO.*delivery finished.*\r?\n\r?sent \d+/);
    expect(stdout).toMatch(/delivery 1 "Demo [^"]+": finished/);
  }, 130_000);
});

describe('piping into head', () => {
  it('exits quietly: no EPIPE stack trace, exit 0', async () => {
    const files = execFileSync('ls', [resolve(import.meta.dirname, 'corpus/bounces')], { encoding: 'utf8' })
      .split('\n')
      .filter((name) => name.endsWith('.eml'))
      .map((name) => resolve(import.meta.dirname, 'corpus/bounces', name));
    // Each file three times: far more NDJSON than a pipe buffers, so writes go on after head exits.
    const args = [...files, ...files, ...files].map((f) => `'${f}'`).join(' ');
    const { stdout, stderr } = await run(
      'bash',
      ['-o', 'pipefail', '-c', `${process.execPath} ${heraldBin} bounce classify --json ${args} | head -1`],
      { env, timeout: 120_000 },
    );
    expect(stdout.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/EPIPE|Error/);
  }, 130_000);
});

it('herald start prints a progress line per delivery: counts, rate, ETA, the binding limit', () => {
  const view = mergeSnapshots([], 0);
  view.rules.push({
    rateKey: 'generic|id0|mx.corp.test',
    rule: 'generic',
    masks: ['*'],
    shared: false,
    publicId: 0,
    limits: {
      maxConnections: 5,
      maxMessagesPerHour: 3000,
      maxMessagesPerConnection: 50,
      configuredMaxConnections: 5,
      configuredMaxMessagesPerHour: 3000,
    },
    openConnections: 1,
    messages: 30,
    load: { messagesPerHour: 0.01 },
    waiting: 12,
    binding: 'maxMessagesPerHour',
    bindingReason: 'pacing 0.83 msg/s per MX host: rule generic, maxMessagesPerHour 3000',
    backoffs: [],
    nodes: ['n1'],
  });
  const before = new Map([[7, { id: 7, name: 'spring', sent: 100, failed: 10, pending: 190 }]]);
  const lines = formatDeliveryProgress(
    [
      { id: 7, name: 'spring', sent: 110, failed: 10, pending: 180 },
      { id: 8, name: 'new', sent: 0, failed: 0, pending: 50 },
    ],
    before,
    10_000,
    view,
  );
  expect(lines).toEqual([
    'delivery 7 "spring": sent 110, failed 10, pending 180, 1 msg/s, ETA 3 min; binding: pacing 0.83 msg/s per MX host: rule generic, maxMessagesPerHour 3000',
    'delivery 8 "new": sent 0, failed 0, pending 50; binding: pacing 0.83 msg/s per MX host: rule generic, maxMessagesPerHour 3000',
  ]);
});

describe('recipient data printed on a terminal', () => {
  it('an import and its rejects show control characters spelled out, never as escape sequences', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-control-'));
    const file = join(dir, 'signups.csv');
    // What a sign-up form lets anyone type: set the window title, clear the screen, fake a line in red, hide text.
    writeFileSync(
      file,
      'email,name\n"evil\u001b]0;owned\u0007\u001b[2J\u001b[31mall rows imported",x\nbob@\u001b[8mhidden.com,y\nvictim@\u202Eelpmaxe.knab,w\nzw@pay\u200B\uFEFFpal..example,v\nok@example.com,z\n',
    );
    const cli = { env: { ...env, HERALD_DATABASE_URL: `sqlite:${join(dir, 'herald.db')}` }, timeout: 60_000 };
    const imported = await run(process.execPath, [heraldBin, 'import', 'recipients', file, '--list', 'signups'], cli);
    const rejects = await run(process.execPath, [heraldBin, 'import', 'rejects', '1'], cli);
    const json = await run(process.execPath, [heraldBin, 'import', 'rejects', '1', '--json'], cli);
    rmSync(dir, { recursive: true, force: true });
    for (const output of [imported.stdout, rejects.stdout, json.stdout])
      expect(output).not.toMatch(
        /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/,
      );
    // Before: the right-to-left override was printed, and the terminal showed "victim@bank.example".
    expect(rejects.stdout).toContain('| victim@\\u202eelpmaxe.knab,w');
    // Before: the zero-width space and the BOM were printed as they are, invisible.
    expect(rejects.stdout).toContain('| zw@pay\\u200b\\ufeffpal..example,v');
    expect(imported.stdout).toContain('line 3: invalid_domain: \\u001b[8mhidden.com is not a valid domain name');
    expect(rejects.stdout).toContain('| evil\\u001b]0;owned\\u0007\\u001b[2J\\u001b[31mall rows imported,x');
    // NDJSON stays valid and says the same.
    const excerpts = json.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { excerpt: string }).excerpt);
    expect(excerpts).toEqual([
      'evil\u001b]0;owned\u0007\u001b[2J\u001b[31mall rows imported,x',
      'bob@\u001b[8mhidden.com,y',
      'victim@\u202Eelpmaxe.knab,w',
      'zw@pay\u200B\uFEFFpal..example,v',
    ]);
  }, 130_000);
});
