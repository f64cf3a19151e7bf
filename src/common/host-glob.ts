// Host-name globs (`*` any run of characters, `?` exactly one), matched in linear passes instead of
// a RegExp. A glob turned into `^.*a.*a.*z$` backtracks over every way to place its stars: the
// 22-character mask `*?*?*?*?*?*?*?*?*?*?*z` took 4 s against `alt1.gmail-smtp-in.l.google.com`,
// blocking the MTA's event loop, and rule packs may come from a source Herald does not control.
// Splitting on `*` and placing each piece at its earliest position is exact for globs (a later
// piece only gains room when an earlier one is placed earlier), so a test is at most O(host × glob).

export interface HostGlob {
  test(host: string): boolean;
}

/** Compiles a glob already lower-cased (hosts given to test() must be lower-cased too). */
export function compileHostGlob(glob: string): HostGlob {
  const pieces = glob.split('*');
  if (pieces.length === 1) return { test: (host) => host.length === glob.length && pieceAt(host, glob, 0) };
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const middle = pieces.slice(1, -1).filter((piece) => piece !== '');
  const minimum = pieces.reduce((sum, piece) => sum + piece.length, 0);
  return {
    test(host) {
      if (host.length < minimum || !pieceAt(host, first, 0)) return false;
      const end = host.length - last.length;
      if (!pieceAt(host, last, end)) return false;
      let position = first.length;
      for (const piece of middle) {
        const found = findPiece(host, piece, position, end);
        if (found < 0) return false;
        position = found + piece.length;
      }
      return true;
    },
  };
}

function pieceAt(host: string, piece: string, at: number): boolean {
  if (!piece.includes('?')) return host.startsWith(piece, at);
  for (let i = 0; i < piece.length; i++) {
    const character = piece[i];
    if (character !== '?' && character !== host[at + i]) return false;
  }
  return true;
}

/** The first position from `from` where `piece` lies wholly before `end`, or -1. */
function findPiece(host: string, piece: string, from: number, end: number): number {
  if (!piece.includes('?')) {
    const found = host.indexOf(piece, from);
    return found >= 0 && found + piece.length <= end ? found : -1;
  }
  for (let at = from; at + piece.length <= end; at++) if (pieceAt(host, piece, at)) return at;
  return -1;
}
