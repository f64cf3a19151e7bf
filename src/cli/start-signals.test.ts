import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { stopSignals } from './start-command.ts';

// A second Ctrl-C (or SIGTERM) while `herald start` was stopping met silence: the process looked hung.

describe('stopSignals', () => {
  it('starts the stop at the first signal and answers a second one with how to end at once', async () => {
    const target = new EventEmitter();
    const said: string[] = [];
    const stop = stopSignals(target as unknown as Pick<NodeJS.Process, 'on' | 'off'>, (line) => said.push(line), 4242);
    target.emit('SIGINT', 'SIGINT');
    expect(await stop.received).toBe('SIGINT');
    expect(said).toEqual([]);
    target.emit('SIGINT', 'SIGINT');
    expect(said).toEqual([
      'SIGINT: already stopping since SIGINT (open SMTP transactions finish, at most mta.dataTimeoutMs); `kill -KILL 4242` ends it at once, and the messages of its open transactions may then be sent again after the restart',
    ]);
    stop.dispose();
    expect(target.listenerCount('SIGINT') + target.listenerCount('SIGTERM')).toBe(0);
  });
});
