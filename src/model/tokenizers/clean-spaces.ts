// llama_detokenize's clean_spaces: three passes over the detokenized bytes that remove spaces
// English tokenizers put before punctuation and contractions (ported as written, in place).

/** llama.cpp's clean_spaces passes over the detokenized bytes: " ?" → "?", " ' " → "'", " 's" → "'s" … */
export function cleanSpaces(text: Uint8Array): Uint8Array {
  const t = Uint8Array.from(text);
  const SP = 0x20;
  const Q = 0x27;
  let total = t.length;
  // first pass: " ?", " !", " .", " ,"
  const t1 = total;
  total = t1 ? 1 : 0;
  for (let i = 1; i < t1; i++) {
    const x = t[i]!;
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    t[total++] = x;
  }
  // second pass: a single apostrophe between spaces
  const t2 = total;
  total = t2 ? 1 : 0;
  for (let i = 1; i < t2; i++) {
    const x = t[i]!;
    if (x === Q && i + 1 < t2 && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0;
    }
    t[total++] = x;
  }
  // third pass: contractions " 's", " 'm", " 're", " 've"
  const t3 = total;
  total = t3 ? 1 : 0;
  for (let i = 1; i < t3; i++) {
    const x = t[i]!;
    if (t[i - 1] === SP && x === Q && i + 1 < t3) {
      const x1 = t[i + 1]!;
      if (x1 === 0x73 || x1 === 0x6d) total--;
      else if (i + 2 < t3) {
        const x2 = t[i + 2]!;
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) total--;
      }
    }
    t[total++] = x;
  }
  return t.subarray(0, total);
}
