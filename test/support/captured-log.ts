import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/common/logger.ts';

/** A logger whose records (JSON lines) a test reads back: what an operator's log would show. */
export function capturedLogger(level: 'warn' | 'info' = 'warn'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString());
      callback();
    },
  });
  return { logger: createLogger({ level, destination }), lines };
}
