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

const encoder = new TextEncoder();

/** UTF-8 bytes of `text`, each written as its byte-level character. */
export function byteEncode(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80 || byteToChar[c] !== String.fromCharCode(c)) {
      ascii = false;
      break;
    }
  }
  if (ascii) return text;
  let out = "";
  for (const b of encoder.encode(text)) out += byteToChar[b];
  return out;
}

/** The byte a byte-level character stands for, or undefined. */
export function charByte(ch: string): number | undefined {
  return charToByte.get(ch);
}

export function byteChar(b: number): string {
  return byteToChar[b]!;
}
