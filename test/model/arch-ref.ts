// An independent float64 reference forward pass for the decoder families, written straight
// from transformers' modeling code (modeling_llama/mistral/qwen2/qwen3/gemma/gemma2/gemma3/phi3
// and modeling_rope_utils). It reads the HF config.json object and HF-named tensors as stored
// in the checkpoint (Gemma norms as w, Phi-3's fused qkv_proj / gate_up_proj) and recomputes
// the whole sequence each call, like HF without a KV cache. It shares no code with src/.
type Json = Record<string, any>;

export type Tensors = Map<string, Float64Array>;

interface Dims {
  H: number;
  nh: number;
  nkv: number;
  hd: number;
  I: number;
  V: number;
  L: number;
  eps: number;
}

function dims(c: Json): Dims {
  const H = c.hidden_size,
    nh = c.num_attention_heads;
  return {
    H,
    nh,
    nkv: c.num_key_value_heads ?? nh,
    hd: c.head_dim ?? H / nh,
    I: c.intermediate_size,
    V: c.vocab_size,
    L: c.num_hidden_layers,
    eps: c.rms_norm_eps ?? 1e-6,
  };
}

const isGemma = (c: Json) => ["gemma", "gemma2", "gemma3_text"].includes(c.model_type);

/** HF RMSNorm (Gemma: x * (1 + w)). */
function rmsNorm(x: Float64Array, w: Float64Array, eps: number, gemma: boolean): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * r * (gemma ? 1 + w[i]! : w[i]!);
  return out;
}

/** y = W x (+ b), W [rows, cols] row-major, optionally a row range of a fused W. */
function linear(W: Float64Array, x: Float64Array, rows: number, rowOffset = 0, b?: Float64Array): Float64Array {
  const cols = x.length;
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = b ? b[r]! : 0;
    const o = (rowOffset + r) * cols;
    for (let k = 0; k < cols; k++) s += W[o + k]! * x[k]!;
    y[r] = s;
  }
  return y;
}

/** modeling_rope_utils: inv_freq and attention_factor for a rope config at sequence length seqLen. */
export function refRope(c: Json, scaling: Json | null, theta: number, seqLen: number): { inv: Float64Array; af: number } {
  const d = dims(c).hd;
  const inv = new Float64Array(d / 2);
  for (let i = 0; i < d / 2; i++) inv[i] = 1 / theta ** ((2 * i) / d);
  const type = scaling ? (scaling.rope_type ?? scaling.type) : "default";
  const maxPos = c.max_position_embeddings;
  if (type === "default") return { inv, af: 1 };
  if (type === "linear") return { inv: inv.map((f) => f / scaling!.factor), af: 1 };
  if (type === "dynamic") {
    const s = Math.max(seqLen, maxPos);
    const base = theta * ((scaling!.factor * s) / maxPos - (scaling!.factor - 1)) ** (d / (d - 2));
    return { inv: inv.map((_, i) => 1 / base ** ((2 * i) / d)), af: 1 };
  }
  if (type === "yarn") {
    let factor = scaling!.factor;
    let orig = maxPos;
    if (scaling!.original_max_position_embeddings !== undefined) {
      orig = scaling!.original_max_position_embeddings;
      factor = maxPos / orig;
    }
    const ms = (s: number, m = 1) => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
    let af = scaling!.attention_factor;
    if (af === undefined || af === null)
      af = scaling!.mscale && scaling!.mscale_all_dim ? ms(factor, scaling!.mscale) / ms(factor, scaling!.mscale_all_dim) : ms(factor);
    const bf = scaling!.beta_fast || 32,
      bs = scaling!.beta_slow || 1;
    const cd = (rot: number) => (d * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
    let lo = Math.floor(cd(bf)),
      hi = Math.ceil(cd(bs));
    if (scaling!.truncate === false) [lo, hi] = [cd(bf), cd(bs)];
    lo = Math.max(lo, 0);
    hi = Math.min(hi, d - 1);
    if (lo === hi) hi += 0.001;
    const out = new Float64Array(d / 2);
    for (let i = 0; i < d / 2; i++) {
      const extra = 1 - Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
      out[i] = (inv[i]! / factor) * (1 - extra) + inv[i]! * extra;
    }
    return { inv: out, af };
  }
  if (type === "longrope" || type === "su") {
    let factor = scaling!.factor;
    let orig = maxPos;
    if (c.original_max_position_embeddings) {
      orig = c.original_max_position_embeddings;
      factor = maxPos / orig;
    }
    let af = scaling!.attention_factor;
    if (af === undefined || af === null) af = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig));
    const ext: number[] = seqLen > orig ? scaling!.long_factor : scaling!.short_factor;
    return { inv: inv.map((f, i) => f / ext[i]!), af };
  }
  throw new Error(`reference: rope type ${type}`);
}

/** Sliding window of layer l (0 = full), from the HF config semantics of each family. */
export function refLayerWindow(c: Json, l: number): number {
  const mt = c.model_type;
  if (mt === "llama" || mt === "gemma") return 0;
  if ((mt === "qwen2" || mt === "qwen3") && !c.use_sliding_window) return 0;
  const W = c.sliding_window ?? (mt === "gemma2" || mt === "gemma3_text" ? 4096 : null);
  if (!W) return 0;
  if (c.layer_types) return c.layer_types[l] === "sliding_attention" ? W : 0;
  if (mt === "qwen2" || mt === "qwen3") return l >= (c.max_window_layers ?? 28) ? W : 0;
  if (mt === "gemma2") return (l + 1) % 2 ? W : 0;
  if (mt === "gemma3_text") return (l + 1) % (c.sliding_window_pattern ?? 6) ? W : 0;
  return W; // mistral, phi3: every layer
}

/** Logits [seq][vocab] for every position of `tokens`. */
export function refForward(c: Json, W: Tensors, tokens: number[]): Float64Array[] {
  const { H, nh, nkv, hd, I, V, L, eps } = dims(c);
  const mt = c.model_type;
  const gemma = isGemma(c);
  const sandwich = mt === "gemma2" || mt === "gemma3_text";
  const T = tokens.length;
  const get = (n: string) => {
    const t = W.get(n);
    if (!t) throw new Error(`reference: missing tensor ${n}`);
    return t;
  };
  const E = get("model.embed_tokens.weight");
  let xs: Float64Array[] = tokens.map((t) => {
    const v = E.slice(t * H, (t + 1) * H);
    if (gemma) for (let i = 0; i < H; i++) v[i] = v[i]! * Math.sqrt(H);
    return v;
  });
  const scaling = sandwich ? (c.query_pre_attn_scalar ?? 256) ** -0.5 : hd ** -0.5;
  const softcap =
    mt === "gemma2"
      ? c.attn_logit_softcapping === undefined
        ? 50
        : c.attn_logit_softcapping
      : mt === "gemma3_text"
        ? (c.attn_logit_softcapping ?? null)
        : null;
  const theta = c.rope_theta ?? (mt === "gemma3_text" ? 1e6 : 10000);
  const globalRope = refRope(c, c.rope_scaling ?? null, theta, T);
  const localRope = mt === "gemma3_text" ? refRope(c, null, c.rope_local_base_freq ?? 10000, T) : globalRope;
  const g = nh / nkv;

  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const win = refLayerWindow(c, l);
    const rope = mt === "gemma3_text" && win > 0 ? localRope : globalRope;
    const qs: Float64Array[] = [],
      ks: Float64Array[] = [],
      vs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = rmsNorm(xs[t]!, get(`${p}input_layernorm.weight`), eps, gemma);
      let q: Float64Array, k: Float64Array, v: Float64Array;
      if (mt === "phi3") {
        const qkv = get(`${p}self_attn.qkv_proj.weight`);
        q = linear(qkv, h, nh * hd, 0);
        k = linear(qkv, h, nkv * hd, nh * hd);
        v = linear(qkv, h, nkv * hd, nh * hd + nkv * hd);
      } else {
        const bias = (n: string) => (mt === "qwen2" ? get(`${p}self_attn.${n}_proj.bias`) : undefined);
        q = linear(get(`${p}self_attn.q_proj.weight`), h, nh * hd, 0, bias("q"));
        k = linear(get(`${p}self_attn.k_proj.weight`), h, nkv * hd, 0, bias("k"));
        v = linear(get(`${p}self_attn.v_proj.weight`), h, nkv * hd, 0, bias("v"));
      }
      if (mt === "qwen3" || mt === "gemma3_text") {
        for (const [vec, n, w] of [
          [q, nh, "q_norm"],
          [k, nkv, "k_norm"],
        ] as const) {
          for (let hh = 0; hh < n; hh++)
            vec.set(rmsNorm(vec.slice(hh * hd, (hh + 1) * hd), get(`${p}self_attn.${w}.weight`), eps, gemma), hh * hd);
        }
      }
      // apply_rotary_pos_emb: x * cos + rotate_half(x) * sin, cos/sin scaled by the attention factor
      for (const [vec, n] of [
        [q, nh],
        [k, nkv],
      ] as const) {
        for (let hh = 0; hh < n; hh++) {
          const o = hh * hd;
          for (let i = 0; i < hd / 2; i++) {
            const ang = t * rope.inv[i]!;
            const cs = Math.cos(ang) * rope.af,
              sn = Math.sin(ang) * rope.af;
            const a = vec[o + i]!,
              b = vec[o + i + hd / 2]!;
            vec[o + i] = a * cs - b * sn;
            vec[o + i + hd / 2] = b * cs + a * sn;
          }
        }
      }
      qs.push(q);
      ks.push(k);
      vs.push(v);
    }
    const next: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const attn = new Float64Array(nh * hd);
      for (let hh = 0; hh < nh; hh++) {
        const kvh = Math.floor(hh / g);
        const sc: number[] = [];
        for (let j = 0; j <= t; j++) {
          if (win > 0 && t - j >= win) {
            sc.push(-Infinity);
            continue;
          }
          let s = 0;
          for (let i = 0; i < hd; i++) s += qs[t]![hh * hd + i]! * ks[j]![kvh * hd + i]!;
          s *= scaling;
          if (softcap) s = Math.tanh(s / softcap) * softcap;
          sc.push(s);
        }
        const mx = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - mx));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= t; j++)
          for (let i = 0; i < hd; i++) attn[hh * hd + i] = attn[hh * hd + i]! + (e[j]! / sum) * vs[j]![kvh * hd + i]!;
      }
      let o = linear(get(`${p}self_attn.o_proj.weight`), attn, H);
      if (sandwich) o = rmsNorm(o, get(`${p}post_attention_layernorm.weight`), eps, true);
      const x1 = xs[t]!.map((v, i) => v + o[i]!);
      const h = rmsNorm(x1, get(sandwich ? `${p}pre_feedforward_layernorm.weight` : `${p}post_attention_layernorm.weight`), eps, gemma);
      let gate: Float64Array, up: Float64Array;
      if (mt === "phi3") {
        const gu = get(`${p}mlp.gate_up_proj.weight`);
        gate = linear(gu, h, I, 0);
        up = linear(gu, h, I, I);
      } else {
        gate = linear(get(`${p}mlp.gate_proj.weight`), h, I);
        up = linear(get(`${p}mlp.up_proj.weight`), h, I);
      }
      const act = gate.map(
        (a, i) => (gemma ? 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3))) : a / (1 + Math.exp(-a))) * up[i]!,
      );
      let m = linear(get(`${p}mlp.down_proj.weight`), act, H);
      if (sandwich) m = rmsNorm(m, get(`${p}post_feedforward_layernorm.weight`), eps, true);
      next.push(x1.map((v, i) => v + m[i]!));
    }
    xs = next;
  }
  const tie = c.tie_word_embeddings ?? gemma;
  const head = tie ? E : get("lm_head.weight");
  const finalCap =
    mt === "gemma2"
      ? c.final_logit_softcapping === undefined
        ? 30
        : c.final_logit_softcapping
      : mt === "gemma3_text"
        ? (c.final_logit_softcapping ?? null)
        : null;
  return xs.map((x) => {
    const logits = linear(head, rmsNorm(x, get("model.norm.weight"), eps, gemma), V);
    if (finalCap) for (let i = 0; i < V; i++) logits[i] = Math.tanh(logits[i]! / finalCap) * finalCap;
    return logits;
  });
}

/** Greedy continuation of `prompt` by `n` tokens (full recompute per step). */
export function refGreedy(c: Json, W: Tensors, prompt: number[], n: number): { tokens: number[]; logits: Float64Array[] } {
  const seq = [...prompt];
  const logits: Float64Array[] = [];
  for (let s = 0; s < n; s++) {
    const all = refForward(c, W, seq);
    const last = all[all.length - 1]!;
    logits.push(last);
    let best = 0;
    for (let i = 1; i < last.length; i++) if (last[i]! > last[best]!) best = i;
    seq.push(best);
  }
  return { tokens: seq.slice(prompt.length), logits };
}
