#!/usr/bin/env python3
"""Independent reference logits for headroom's forward pass (issue 16 item 3).

Builds small random-weight Llama and Qwen2 models (hidden 512, 4 layers, 8 query heads over 2
KV heads (GQA), bf16 weights), saves each as an HF safetensors folder (config.json,
model.safetensors, a WordLevel tokenizer.json), and writes the reference logits of the prefill
and `--steps` greedy decode steps for a few prompts. test/gpu/torch/compare.ts then runs
headroom on the same folders, teacher-forced with the same tokens, and compares
(README.md beside this file: the handoff, the tolerance and its derivation).

  --backend torch  (GPU machines: PyTorch + transformers) the models are transformers'
                   LlamaForCausalLM / Qwen2ForCausalLM; "ref" = transformers in bf16 on --device
                   (prefill, then one token per step through its KV cache: the greedy tokens);
                   "truth" = the same bf16 weights upcast to fp32, one causal forward over the
                   teacher-forced sequence. A float64 numpy forward of the saved folder is checked
                   against "truth" too (it is the reference of the torch-less path below).
  --backend numpy  (anywhere with numpy: CI, this machine) the weights are drawn with numpy and
                   written as safetensors by hand; "truth" = a float64 numpy forward. No "ref".

Output (--out DIR): DIR/reference.json, DIR/<model>/ (the HF folder), DIR/<model>/truth.f32 and
ref.f32: float32 little-endian [prompts][steps + 1][vocab]; row 0 is the prefill's last-token
logits, row k the logits after feeding tokens[k-1].
"""
import argparse
import json
import os
import struct
import sys
import time

# numpy's OpenBLAS threads only slow the small float64 products here (and spin on a busy host)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

VOCAB = 2048
BASE = dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
            intermediate_size=1408, vocab_size=VOCAB, max_position_embeddings=512, hidden_act="silu")
MODELS = {
    "llama": dict(BASE, architectures=["LlamaForCausalLM"], model_type="llama", rope_theta=10000.0,
                  rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=False, mlp_bias=False),
    "qwen2": dict(BASE, architectures=["Qwen2ForCausalLM"], model_type="qwen2", rope_theta=1000000.0,
                  rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                  max_window_layers=4),
}
PROMPT_LENS = [7, 33, 100]
INIT_STD = 0.02     # transformers' initializer_range
NORM_STD = 0.1      # norm weights ~ N(1, 0.1) and q/k/v biases ~ N(0, 0.1): transformers
BIAS_STD = 0.1      # initializes them to 1 and 0, which would leave them untested


# ---- bf16 and safetensors ----------------------------------------------------------------

def to_bf16_bits(a):
    """float32 -> bfloat16 bits, round to nearest even (as torch's .to(torch.bfloat16))."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors):
    """tensors: name -> float32 array holding bf16-representable values; stored as BF16."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        raw = to_bf16_bits(tensors[name]).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """name -> float32 array (BF16/F16/F32 tensors)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        raw = data[8 + n + lo:8 + n + hi]
        if e["dtype"] == "BF16":
            a = from_bf16_bits(np.frombuffer(raw, dtype=np.uint16))
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
        elif e["dtype"] == "F32":
            a = np.frombuffer(raw, dtype=np.float32)
        else:
            raise ValueError(f"{path}: {name}: dtype {e['dtype']}")
        out[name] = a.reshape(e["shape"])
    return out


def write_tokenizer(folder):
    """A WordLevel tokenizer.json (t0 .. t{V-1}): the comparison feeds token ids, but an HF
    folder needs a tokenizer for headroom (and transformers) to open it."""
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
          "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None, "decoder": None,
          "model": {"type": "WordLevel", "vocab": {f"t{i}": i for i in range(VOCAB)}, "unk_token": "t0"}}
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump(tj, f)


# ---- float64 forward (HF Llama / Qwen2 semantics) -----------------------------------------

def numpy_forward(cfg, W, ids, cache=None):
    """Logits [len(ids), vocab] of a causal forward in float64. `cache` (a dict, filled in place)
    holds each layer's roped K and V of the tokens before `ids`; None = no earlier tokens."""
    D, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = D // H
    eps = cfg["rms_norm_eps"]
    W64 = cache.setdefault("f64", {}) if cache is not None else {}

    def g(n):  # float64 copies, made once per cache
        if n not in W64:
            W64[n] = W[n].astype(np.float64)
        return W64[n]

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    cache = {} if cache is None else cache
    T = len(ids)
    P = cache["kv"][0][0].shape[0] if 0 in cache.get("kv", {}) else 0  # tokens before `ids`
    pos = np.arange(P, P + T, dtype=np.float64)
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    ang = np.outer(pos, inv)
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]

    def rope(x):  # x [T, heads, hd]; rotate_half (NeoX layout), as transformers
        x1, x2 = x[..., :hd // 2], x[..., hd // 2:]
        return x * cos + np.concatenate([-x2, x1], axis=-1) * sin

    mask = np.concatenate([np.zeros((T, P)), np.triu(np.full((T, T), -np.inf), 1)], axis=1)
    x = g("model.embed_tokens.weight")[np.asarray(ids)]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms(x, g(p + "input_layernorm.weight"))

        def proj(n, h=h, p=p):
            y = h @ g(p + f"self_attn.{n}_proj.weight").T
            b = p + f"self_attn.{n}_proj.bias"
            return y + g(b) if b in W else y

        q = rope(proj("q").reshape(T, H, hd))
        k = rope(proj("k").reshape(T, KV, hd))
        v = proj("v").reshape(T, KV, hd)
        kv = cache.setdefault("kv", {})
        if layer in kv:
            k = np.concatenate([kv[layer][0], k])
            v = np.concatenate([kv[layer][1], v])
        kv[layer] = (k, v)
        rep = H // KV
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        a = np.einsum("hts,shd->thd", s, v).reshape(T, D)
        x = x + a @ g(p + "self_attn.o_proj.weight").T
        h = rms(x, g(p + "post_attention_layernorm.weight"))
        gate = h @ g(p + "mlp.gate_proj.weight").T
        up = h @ g(p + "mlp.up_proj.weight").T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ g(p + "mlp.down_proj.weight").T
    x = rms(x, g("model.norm.weight"))
    head = g("model.embed_tokens.weight") if cfg["tie_word_embeddings"] else g("lm_head.weight")
    return x @ head.T


# ---- backends -------------------------------------------------------------------------------

def numpy_weights(cfg, rng):
    D, H, KV, I = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["intermediate_size"]
    hd = D // H
    bf = lambda a: from_bf16_bits(to_bf16_bits(a.astype(np.float32)))  # noqa: E731
    n = lambda *s: bf(rng.normal(0, INIT_STD, s))  # noqa: E731
    W = {"model.embed_tokens.weight": n(VOCAB, D), "model.norm.weight": bf(rng.normal(1, NORM_STD, D))}
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = n(VOCAB, D)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        W[p + "self_attn.q_proj.weight"] = n(H * hd, D)
        W[p + "self_attn.k_proj.weight"] = n(KV * hd, D)
        W[p + "self_attn.v_proj.weight"] = n(KV * hd, D)
        W[p + "self_attn.o_proj.weight"] = n(D, H * hd)
        W[p + "mlp.gate_proj.weight"] = n(I, D)
        W[p + "mlp.up_proj.weight"] = n(I, D)
        W[p + "mlp.down_proj.weight"] = n(D, I)
        W[p + "input_layernorm.weight"] = bf(rng.normal(1, NORM_STD, D))
        W[p + "post_attention_layernorm.weight"] = bf(rng.normal(1, NORM_STD, D))
        if cfg["model_type"] == "qwen2":
            for k, rows in (("q", H * hd), ("k", KV * hd), ("v", KV * hd)):
                W[p + f"self_attn.{k}_proj.bias"] = bf(rng.normal(0, BIAS_STD, rows))
    return W


def run_numpy(name, cfg, folder, prompts, steps, rng):
    W = numpy_weights(cfg, rng)
    write_safetensors(os.path.join(folder, "model.safetensors"), W)
    tokens, truth = [], []
    for p in prompts:
        cache = {}
        rows, toks = [numpy_forward(cfg, W, p, cache)[-1]], []
        for _ in range(steps):  # greedy on the float64 logits, one token per step through the cache
            toks.append(int(np.argmax(rows[-1])))
            rows.append(numpy_forward(cfg, W, [toks[-1]], cache)[-1])
        tokens.append(toks)
        truth.append(np.stack(rows).astype(np.float32))
    return tokens, {"truth": np.stack(truth)}, {"numpy": np.__version__}


def run_torch(name, cfg, folder, prompts, steps, device, seed):
    import torch
    import transformers

    torch.manual_seed(seed)
    kind = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config}[name]
    tc = kind(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")},
              initializer_range=INIT_STD)
    cls = {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM}[name]
    model = cls(tc).to(torch.bfloat16)
    with torch.no_grad():
        for n, prm in model.named_parameters():
            if n.endswith("norm.weight"):
                prm.normal_(1.0, NORM_STD)
            elif n.endswith("_proj.bias"):
                prm.normal_(0.0, BIAS_STD)
    model.save_pretrained(folder, safe_serialization=True)
    model = model.to(device).eval()
    ref, tokens = [], []
    with torch.no_grad():
        for p in prompts:  # bf16, through the KV cache: the greedy tokens and the "ref" logits
            out = model(torch.tensor([p], device=device), use_cache=True)
            rows, toks = [out.logits[0, -1].float()], []
            past = out.past_key_values
            for _ in range(steps):
                t = int(torch.argmax(rows[-1]))
                toks.append(t)
                out = model(torch.tensor([[t]], device=device), past_key_values=past, use_cache=True)
                past = out.past_key_values
                rows.append(out.logits[0, -1].float())
            ref.append(torch.stack(rows).cpu().numpy())
            tokens.append(toks)
        model = model.float()  # the same bf16 weights, fp32 arithmetic: "truth"
        truth = []
        for p, toks in zip(prompts, tokens):
            logits = model(torch.tensor([p + toks], device=device)).logits[0, len(p) - 1:]
            truth.append(logits.float().cpu().numpy())
    info = {"torch": torch.__version__, "transformers": transformers.__version__,
            "attn_implementation": getattr(model.config, "_attn_implementation", None)}
    return tokens, {"ref": np.stack(ref), "truth": np.stack(truth)}, info


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", choices=["torch", "numpy", "auto"], default="auto")
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--models", default="llama,qwen2")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    backend = a.backend
    if backend == "auto":
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
            backend = "torch"
        except ImportError:
            backend = "numpy"
    device = a.device
    if backend == "torch" and device is None:
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    manifest = {"backend": backend, "device": device or "cpu", "steps": a.steps, "seed": a.seed, "models": []}
    for name in a.models.split(","):
        cfg = dict(MODELS[name], dtype="bfloat16", torch_dtype="bfloat16")
        folder = os.path.join(a.out, name)
        os.makedirs(folder, exist_ok=True)
        prompts = [[int(t) for t in rng.integers(1, VOCAB, n)] for n in PROMPT_LENS]
        t0 = time.time()
        if backend == "torch":
            tokens, arrays, info = run_torch(name, cfg, folder, prompts, a.steps, device, a.seed)
        else:
            with open(os.path.join(folder, "config.json"), "w") as f:
                json.dump(cfg, f, indent=1)
            tokens, arrays, info = run_numpy(name, cfg, folder, prompts, a.steps, rng)
        write_tokenizer(folder)
        entry = {"name": name, "dir": name, "vocab": VOCAB, "prompts": prompts, "tokens": tokens,
                 "rows": a.steps + 1, "files": {}, "info": info}
        for kind, arr in arrays.items():
            if arr is None:
                continue
            fn = f"{kind}.f32"
            np.ascontiguousarray(arr, dtype="<f4").tofile(os.path.join(folder, fn))
            entry["files"][kind] = f"{name}/{fn}"
        if backend == "torch":
            # the float64 numpy forward of the saved folder against torch's fp32 "truth": checks
            # the numpy reference (the CI path) and that the folder holds what torch ran
            with open(os.path.join(folder, "config.json")) as f:
                saved = json.load(f)
            rope = saved.get("rope_parameters") or {}
            ncfg = dict(cfg, rope_theta=saved.get("rope_theta", rope.get("rope_theta", cfg["rope_theta"])))
            W = read_safetensors(os.path.join(folder, "model.safetensors"))
            errs = [rel_l2(numpy_forward(ncfg, W, p + t)[len(p) - 1:], arrays["truth"][i].astype(np.float64))
                    for i, (p, t) in enumerate(zip(prompts, tokens))]
            entry["numpy_vs_torch_fp32_rel_l2"] = max(errs)
            entry["torch_bf16_vs_fp32_rel_l2"] = [rel_l2(arrays["ref"][i], arrays["truth"][i]) for i in range(len(prompts))]
            if max(errs) > 1e-4:
                print(f"{name}: numpy float64 vs torch fp32: rel L2 {max(errs):.2e} > 1e-4", file=sys.stderr)
                sys.exit(1)
        manifest["models"].append(entry)
        print(f"{name}: {backend} on {device or 'cpu'}: {len(prompts)} prompts {PROMPT_LENS}, {a.steps} steps, "
              f"{time.time() - t0:.1f} s" + (f", numpy vs torch fp32 {entry['numpy_vs_torch_fp32_rel_l2']:.1e}"
                                              if "numpy_vs_torch_fp32_rel_l2" in entry else ""))
    with open(os.path.join(a.out, "reference.json"), "w") as f:
        json.dump(manifest, f)
    print(f"reference: {os.path.join(a.out, 'reference.json')}")


if __name__ == "__main__":
    main()
