// GPT-2's byte-level alphabet: every byte maps to a printable codepoint (printable Latin-1
// bytes to themselves, the rest to U+0100…), so byte-level BPE vocabularies are text.
const byteToChar: string[] = new Array(256);
const charToByte = new Map<string, number>();

(() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCodePoint(printable(b) ? b : 256 + n++);
    byteToChar[b] = ch;
    charToByte.set(ch, b);
  }
})();

/** UTF-8 bytes of `text`, each written as its byte-level character. */
export function byteEncode(text: string): string {
  let same = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      same = false;
      break;
    }
  }
  if (same) return text; // printable ASCII stands for itself
  const parts: string[] = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate: as TextEncoder would
    if (c < 0x80) parts.push(byteToChar[c]!);
    else if (c < 0x800) parts.push(byteToChar[0xc0 | (c >> 6)]!, byteToChar[0x80 | (c & 0x3f)]!);
    else if (c < 0x10000) parts.push(byteToChar[0xe0 | (c >> 12)]!, byteToChar[0x80 | ((c >> 6) & 0x3f)]!, byteToChar[0x80 | (c & 0x3f)]!);
    else
      parts.push(
        byteToChar[0xf0 | (c >> 18)]!,
        byteToChar[0x80 | ((c >> 12) & 0x3f)]!,
        byteToChar[0x80 | ((c >> 6) & 0x3f)]!,
        byteToChar[0x80 | (c & 0x3f)]!,
      );
  }
  return parts.join("");
}

/** The byte a byte-level character stands for, or undefined. */
export function charByte(ch: string): number | undefined {
  return charToByte.get(ch);
}

export function byteChar(b: number): string {
  return byteToChar[b]!;
}
