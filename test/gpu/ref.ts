// float64 references of every op (straightforward loops, no blocking, no tricks), used by the
// GPU suites against both backends. Inputs are the float values the device sees (already
// rounded to the dtype); outputs are float64.

/** out[t, :] = table[ids[t], :] */
export function refEmbedding(table: Float32Array, ids: Int32Array, dim: number): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) for (let i = 0; i < dim; i++) out[t * dim + i] = table[ids[t]! * dim + i]!;
  return out;
}

/** RMSNorm (+ fused residual): returns out and the new x (x + residual). */
export function refRmsNorm(
  x: Float32Array,
  residual: Float32Array | null,
  w: Float32Array,
  rows: number,
  dim: number,
  eps: number,
): { out: Float64Array; x: Float64Array } {
  const out = new Float64Array(rows * dim),
    nx = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) {
      const v = x[r * dim + i]! + (residual ? residual[r * dim + i]! : 0);
      nx[r * dim + i] = v;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = nx[r * dim + i]! * inv * w[i]!;
  }
  return { out, x: nx };
}

/** RoPE in float64 on a copy of [T, H, d] rows `stride` apart; rotates the first rot dims. */
export function refRope(
  x: Float32Array,
  pos: Int32Array,
  invf: Float32Array,
  T: number,
  H: number,
  d: number,
  rot: number,
  gptj: boolean,
  stride: number,
): Float64Array {
  const out = Float64Array.from(x);
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) {
      const base = t * stride + h * d;
      for (let i = 0; i < rot / 2; i++) {
        const ang = pos[t]! * invf[i]!,
          c = Math.cos(ang),
          s = Math.sin(ang);
        const a = base + (gptj ? 2 * i : i),
          b = base + (gptj ? 2 * i + 1 : i + rot / 2);
        const x0 = out[a]!,
          x1 = out[b]!;
        out[a] = x0 * c - x1 * s;
        out[b] = x1 * c + x0 * s;
      }
    }
  return out;
}

/** llama3-style scaled inverse frequencies (the scaling is data for the kernel). */
export function llama3InvFreq(rot: number, theta = 500000, factor = 8, low = 1, high = 4, orig = 8192): Float32Array {
  const out = new Float32Array(rot / 2);
  const lowWl = orig / low,
    highWl = orig / high;
  for (let i = 0; i < rot / 2; i++) {
    const f = 1 / theta ** ((2 * i) / rot);
    const wl = (2 * Math.PI) / f;
    if (wl < highWl) out[i] = f;
    else if (wl > lowWl) out[i] = f / factor;
    else {
      const smooth = (orig / wl - low) / (high - low);
      out[i] = (1 - smooth) * (f / factor) + smooth * f;
    }
  }
  return out;
}

export function refSiluMul(gu: Float32Array, rows: number, inter: number, stride: number, upOff: number): Float64Array {
  const out = new Float64Array(rows * inter);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < inter; i++) {
      const g = gu[r * stride + i]!,
        u = gu[r * stride + upOff + i]!;
      out[r * inter + i] = (g / (1 + Math.exp(-g))) * u;
    }
  return out;
}

/** y = x[rows] . w^T (+ bias), and per-element sum |x w| (+|bias|) for error bounds. */
export function refMatmul(
  x: Float32Array,
  rows: Int32Array | null,
  w: Float32Array,
  bias: Float32Array | null,
  m: number,
  n: number,
  k: number,
): { y: Float64Array; mag: Float64Array } {
  const y = new Float64Array(m * n),
    mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const xr = (rows ? rows[i]! : i) * k;
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j]! : 0,
        a = bias ? Math.abs(bias[j]!) : 0;
      for (let l = 0; l < k; l++) {
        const p = x[xr + l]! * w[j * k + l]!;
        s += p;
        a += Math.abs(p);
      }
      y[i * n + j] = s;
      mag[i * n + j] = a;
    }
  }
  return { y, mag };
}

export interface PagedKv {
  k: Float32Array; // [num_blocks, bs, hk, d]
  v: Float32Array;
  bs: number;
  hk: number;
  d: number;
}

/** Attention of one query over keys 0..n-1 of a sequence through its block table row. */
export function refAttend(
  out: Float64Array,
  outOff: number,
  q: Float32Array,
  qOff: number,
  kv: PagedKv,
  bt: Int32Array,
  btOff: number,
  kvh: number,
  n: number,
  scale: number,
  window = 0,
  softcap = 0,
): void {
  const { bs, hk, d } = kv;
  const sc = new Float64Array(n).fill(-Infinity);
  // sliding window: the query at position n-1 sees keys n-window .. n-1
  const t0 = window > 0 ? Math.max(0, n - window) : 0;
  let mx = -Infinity;
  for (let t = t0; t < n; t++) {
    const base = ((bt[btOff + Math.floor(t / bs)]! * bs + (t % bs)) * hk + kvh) * d;
    let s = 0;
    for (let i = 0; i < d; i++) s += q[qOff + i]! * kv.k[base + i]!;
    sc[t] = softcap > 0 ? softcap * Math.tanh((s * scale) / softcap) : s * scale;
    if (sc[t]! > mx) mx = sc[t]!;
  }
  let sum = 0;
  for (let t = t0; t < n; t++) {
    sc[t] = Math.exp(sc[t]! - mx);
    sum += sc[t]!;
  }
  for (let i = 0; i < d; i++) out[outOff + i] = 0;
  for (let t = t0; t < n; t++) {
    const base = ((bt[btOff + Math.floor(t / bs)]! * bs + (t % bs)) * hk + kvh) * d;
    const p = sc[t]! / sum;
    for (let i = 0; i < d; i++) out[outOff + i] = out[outOff + i]! + p * kv.v[base + i]!;
  }
}

/** Decode: out [B, hq, d]. */
export function refDecode(
  q: Float32Array,
  kv: PagedKv,
  bt: Int32Array,
  seqLens: Int32Array,
  B: number,
  hq: number,
  maxb: number,
  scale: number,
  qStride: number,
  window = 0,
  softcap = 0,
): Float64Array {
  const d = kv.d,
    g = hq / kv.hk;
  const out = new Float64Array(B * hq * d);
  for (let s = 0; s < B; s++)
    for (let h = 0; h < hq; h++)
      refAttend(out, (s * hq + h) * d, q, s * qStride + h * d, kv, bt, s * maxb, Math.floor(h / g), seqLens[s]!, scale, window, softcap);
  return out;
}

/** Prefill with causal mask over cached prefix: rows covered by qsl are written, others NaN. */
export function refPrefill(
  q: Float32Array,
  kv: PagedKv,
  bt: Int32Array,
  seqLens: Int32Array,
  qsl: Int32Array,
  B: number,
  T: number,
  hq: number,
  maxb: number,
  scale: number,
  qStride: number,
  window = 0,
  softcap = 0,
): Float64Array {
  const d = kv.d,
    g = hq / kv.hk;
  const out = new Float64Array(T * hq * d).fill(NaN);
  for (let s = 0; s < B; s++) {
    const qlen = qsl[s + 1]! - qsl[s]!,
      L = seqLens[s]!;
    for (let i = 0; i < qlen; i++) {
      const row = qsl[s]! + i,
        pos = L - qlen + i;
      for (let h = 0; h < hq; h++)
        refAttend(out, (row * hq + h) * d, q, row * qStride + h * d, kv, bt, s * maxb, Math.floor(h / g), pos + 1, scale, window, softcap);
    }
  }
  return out;
}
