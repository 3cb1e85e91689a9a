// An independent reference: a direct port of karpathy's llama2.c run.c forward pass (float32,
// reading the llama2.c .bin checkpoint and tok512.bin), used to check the engine's greedy
// tokens. It shares no code with src/ (no loaders, no ops, no tokenizer).
import { readFileSync } from "node:fs";

export interface Llama2c {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seqLen: number;
  w: Record<string, Float32Array>;
}

export function readLlama2c(path: string): Llama2c {
  const buf = readFileSync(path);
  const hdr = new Int32Array(buf.buffer, buf.byteOffset, 7);
  const [dim, hidden, layers, heads, kvHeads, vocabRaw, seqLen] = Array.from(hdr) as number[];
  const shared = vocabRaw! > 0;
  const vocab = Math.abs(vocabRaw!);
  const headSize = dim! / heads!;
  const kvDim = (dim! * kvHeads!) / heads!;
  const f = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length));
  let at = 0;
  const take = (n: number) => {
    const v = f.subarray(at, at + n);
    at += n;
    return v;
  };
  const w: Record<string, Float32Array> = {};
  w.emb = take(vocab * dim!);
  w.rmsAtt = take(layers! * dim!);
  w.wq = take(layers! * dim! * dim!);
  w.wk = take(layers! * dim! * kvDim);
  w.wv = take(layers! * dim! * kvDim);
  w.wo = take(layers! * dim! * dim!);
  w.rmsFfn = take(layers! * dim!);
  w.w1 = take(layers! * dim! * hidden!);
  w.w2 = take(layers! * hidden! * dim!);
  w.w3 = take(layers! * dim! * hidden!);
  w.rmsFinal = take(dim!);
  take((seqLen! * headSize) / 2);
  take((seqLen! * headSize) / 2);
  w.wcls = shared ? w.emb : take(vocab * dim!);
  return { dim: dim!, hidden: hidden!, layers: layers!, heads: heads!, kvHeads: kvHeads!, vocab, seqLen: seqLen!, w };
}

function rmsnorm(o: Float32Array, x: Float32Array, w: Float32Array): void {
  let ss = 0;
  for (let j = 0; j < x.length; j++) ss += x[j]! * x[j]!;
  ss = 1 / Math.sqrt(ss / x.length + 1e-5);
  for (let j = 0; j < x.length; j++) o[j] = w[j]! * (ss * x[j]!);
}

function matmul(o: Float32Array, x: Float32Array, w: Float32Array, n: number, d: number): void {
  for (let i = 0; i < d; i++) {
    let v = 0;
    for (let j = 0; j < n; j++) v += w[i * n + j]! * x[j]!;
    o[i] = v;
  }
}

/** Greedy generation from BOS (token 1), like `run stories260K.bin -z tok512.bin -t 0.0`. */
export function generateGreedy(m: Llama2c, steps: number): number[] {
  const { dim, hidden, layers, heads, kvHeads, vocab } = m;
  const hs = dim / heads;
  const kvDim = (dim * kvHeads) / heads;
  const kvMul = heads / kvHeads;
  const x = new Float32Array(dim),
    xb = new Float32Array(dim),
    xb2 = new Float32Array(dim);
  const hb = new Float32Array(hidden),
    hb2 = new Float32Array(hidden);
  const q = new Float32Array(dim),
    logits = new Float32Array(vocab);
  const kc = new Float32Array(layers * m.seqLen * kvDim),
    vc = new Float32Array(layers * m.seqLen * kvDim);
  const att = new Float32Array(m.seqLen);
  const W = m.w;
  const out: number[] = [];
  let token = 1;
  for (let pos = 0; pos < steps; pos++) {
    x.set(W.emb!.subarray(token * dim, (token + 1) * dim));
    for (let l = 0; l < layers; l++) {
      rmsnorm(xb, x, W.rmsAtt!.subarray(l * dim, (l + 1) * dim));
      const loff = l * m.seqLen * kvDim;
      const k = kc.subarray(loff + pos * kvDim, loff + (pos + 1) * kvDim);
      const v = vc.subarray(loff + pos * kvDim, loff + (pos + 1) * kvDim);
      matmul(q, xb, W.wq!.subarray(l * dim * dim), dim, dim);
      matmul(k, xb, W.wk!.subarray(l * dim * kvDim), dim, kvDim);
      matmul(v, xb, W.wv!.subarray(l * dim * kvDim), dim, kvDim);
      for (let i = 0; i < dim; i += 2) {
        const fr = 1 / 10000 ** ((i % hs) / hs);
        const val = pos * fr;
        const fcr = Math.cos(val),
          fci = Math.sin(val);
        for (let t = 0; t < (i < kvDim ? 2 : 1); t++) {
          const vec = t === 0 ? q : k;
          const v0 = vec[i]!,
            v1 = vec[i + 1]!;
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      for (let h = 0; h < heads; h++) {
        const qh = q.subarray(h * hs, (h + 1) * hs);
        const kvh = Math.floor(h / kvMul) * hs;
        let mx = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let s = 0;
          for (let i = 0; i < hs; i++) s += qh[i]! * kc[loff + t * kvDim + kvh + i]!;
          s /= Math.sqrt(hs);
          att[t] = s;
          if (s > mx) mx = s;
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) {
          att[t] = Math.exp(att[t]! - mx);
          sum += att[t]!;
        }
        const o = xb.subarray(h * hs, (h + 1) * hs);
        o.fill(0);
        for (let t = 0; t <= pos; t++) {
          const a = att[t]! / sum;
          for (let i = 0; i < hs; i++) o[i] = o[i]! + a * vc[loff + t * kvDim + kvh + i]!;
        }
      }
      matmul(xb2, xb, W.wo!.subarray(l * dim * dim), dim, dim);
      for (let i = 0; i < dim; i++) x[i] = x[i]! + xb2[i]!;
      rmsnorm(xb, x, W.rmsFfn!.subarray(l * dim, (l + 1) * dim));
      matmul(hb, xb, W.w1!.subarray(l * dim * hidden), dim, hidden);
      matmul(hb2, xb, W.w3!.subarray(l * dim * hidden), dim, hidden);
      for (let i = 0; i < hidden; i++) {
        const g = hb[i]!;
        hb[i] = (g / (1 + Math.exp(-g))) * hb2[i]!;
      }
      matmul(xb, hb, W.w2!.subarray(l * dim * hidden), hidden, dim);
      for (let i = 0; i < dim; i++) x[i] = x[i]! + xb[i]!;
    }
    rmsnorm(x, x, W.rmsFinal!);
    matmul(logits, x, W.wcls!, dim, vocab);
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[i]! > logits[best]!) best = i;
    out.push(best);
    token = best;
  }
  return out;
}

/** llama2.c's decode of tok512.bin pieces (BOS-stripping and <0xXX> byte tokens). */
export function decodeLlama2c(tokPath: string, vocab: number, ids: number[]): string {
  const buf = readFileSync(tokPath);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let at = 4;
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < vocab; i++) {
    at += 4; // score
    const len = dv.getInt32(at, true);
    at += 4;
    pieces.push(buf.subarray(at, at + len));
    at += len;
  }
  const bytes: number[] = [];
  let prev = 1;
  for (const id of ids) {
    let p = Array.from(pieces[id]!);
    if (prev === 1 && p[0] === 0x20) p = p.slice(1);
    const s = String.fromCharCode(...p);
    const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(s);
    if (m) bytes.push(parseInt(m[1]!, 16));
    else bytes.push(...p);
    prev = id;
  }
  return new TextDecoder().decode(Uint8Array.from(bytes));
}
