// Stop strings on the detokenized output (frontend side; the engine only knows token ids).
// A match ends the text just before the stop string. While generating, the tail that is still
// a prefix of some stop string is held back from the stream: it may yet become a stop string.

/** Earliest stop string in `text` that ends inside the newest `newChars` characters. */
export function findStopString(text: string, stops: readonly string[], newChars: number): { index: number; stop: string } | null {
  let best: { index: number; stop: string } | null = null;
  const prevLen = text.length - newChars;
  for (const s of stops) {
    if (s.length === 0) continue;
    const idx = text.indexOf(s, Math.max(0, prevLen - s.length + 1));
    if (idx >= 0 && (best === null || idx < best.index)) best = { index: idx, stop: s };
  }
  return best;
}

/** Length of the longest tail of `text` that is a proper prefix of a stop string (text to hold back). */
export function stopPrefixLength(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops)
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--)
      if (text.endsWith(s.slice(0, k))) {
        hold = k;
        break;
      }
  return hold;
}
