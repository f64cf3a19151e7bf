// One live status line at the bottom of a terminal (the demo's progress, `herald start`'s delivery
// lines) that log lines never break: every other write to the same stream erases the status line
// first and redraws it after. When the stream is not a terminal there is no status line: callers
// print whole lines instead.

export interface StatusLine {
  /** Whether the stream is a terminal (a live line is possible). */
  readonly live: boolean;
  /** Replaces the live line (terminal only). */
  set(text: string): void;
  /** Writes whole lines (a log record) above the live line. */
  write(chunk: string): void;
  /** Leaves the last live line on screen and ends it with a newline. */
  done(): void;
}

const clearLine = '\r\u001b[K';

export function createStatusLine(stream: NodeJS.WriteStream = process.stderr): StatusLine {
  let current = '';
  const live = Boolean(stream.isTTY);
  return {
    live,
    set(text) {
      if (!live) return;
      current = text;
      stream.write(`${clearLine}${text}`);
    },
    write(chunk) {
      if (!live || current === '') {
        stream.write(chunk);
        return;
      }
      stream.write(`${clearLine}${chunk}${chunk.endsWith('\n') ? '' : '\n'}${current}`);
    },
    done() {
      if (live && current !== '') stream.write('\n');
      current = '';
    },
  };
}

/** The status line of this process's stderr, shared by the logger and the progress displays. */
let stderrLine: StatusLine | undefined;
export function stderrStatusLine(): StatusLine {
  stderrLine ??= createStatusLine(process.stderr);
  return stderrLine;
}
