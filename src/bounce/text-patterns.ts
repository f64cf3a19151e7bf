// The text patterns of a rule pack, tested against one reply at a time, each at most once.
//
// Consecutive patterns are also joined into one alternation per block: one RegExp run tells whether
// any pattern of the block matches the text (an alternation matches somewhere exactly when one of
// its alternatives does), and V8 runs one alternation of N patterns several times faster than N
// separate RegExps. Most replies match no pattern of most blocks, so most patterns are never run on
// their own; when a block matches, its patterns are tested one by one, so which rule decides is
// exactly what testing every pattern in order gives.

// Measured with bench/classify.ts on the shipped pack (docs/bounce-rules.md, Throughput).
const BLOCK_SIZE = 8;
// Joined into one RegExp, a pattern's backreference (\1, \k<name>) would point at another
// pattern's group, and two equal group names are a syntax error: such a pattern is run alone.
const NOT_JOINABLE = /\\[1-9]|\\k<|\(\?<(?![=!])/;

export interface TextPatterns {
  /** For one (normalised) reply text: whether pattern `index` matches it. */
  forText(text: string): (index: number) => boolean;
}

/** `sources` are case-insensitive RegExp sources, distinct, in the order rules are evaluated. */
export function compileTextPatterns(sources: readonly string[], blockSize = BLOCK_SIZE): TextPatterns {
  const patterns = sources.map((source) => new RegExp(source, 'i'));
  const blockOf: number[] = sources.map(() => -1);
  const blocks: RegExp[] = [];
  let members: number[] = [];
  const closeBlock = (): void => {
    if (members.length > 1) {
      blocks.push(new RegExp(members.map((i) => `(?:${sources[i]})`).join('|'), 'i'));
      for (const i of members) blockOf[i] = blocks.length - 1;
    }
    members = [];
  };
  sources.forEach((source, index) => {
    if (NOT_JOINABLE.test(source)) return;
    members.push(index);
    if (members.length === blockSize) closeBlock();
  });
  closeBlock();
  return {
    forText(text) {
      // 0: not run yet, 1: no match, 2: match.
      const matched = new Uint8Array(patterns.length);
      const blockMatched = new Uint8Array(blocks.length);
      return (index) => {
        if (matched[index] === 0) {
          const block = blockOf[index]!;
          if (block >= 0 && blockMatched[block] === 0) blockMatched[block] = blocks[block]!.test(text) ? 2 : 1;
          matched[index] = block >= 0 && blockMatched[block] === 1 ? 1 : patterns[index]!.test(text) ? 2 : 1;
        }
        return matched[index] === 2;
      };
    },
  };
}
