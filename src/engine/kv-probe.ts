// Start-up check that the backend implements the chosen KV cache dtype with the compute dtype:
// one kv_write and one decode attention on a one-block scratch cache at the model's head shape.
// A backend without the kernels returns HR_E_UNSUPPORTED; that becomes a start-up error naming
// the flag, instead of the first request failing mid-step.
import type { ModelConfig } from "../model/config.ts";
import { COMPUTE_DTYPE_BYTES, dtypeOfCode } from "../model/dtype.ts";
import { KV_DTYPE_BYTES, KV_DTYPE_CODE, KvCacheDtypeError, type KvCacheDtype } from "../model/kv-dtype.ts";
import type { Device } from "../native/device.ts";
import { HeadroomError, Status } from "../native/errors.ts";
import type { Ops, PagedCache } from "../native/ops.ts";

export function probeKvCacheDtype(dev: Device, ops: Ops, cfg: ModelConfig, kv: KvCacheDtype, blockSize: number): void {
  const code = KV_DTYPE_CODE[kv];
  if (code === ops.dtype) return; // the cache in the compute dtype: every backend has it
  const compute = dtypeOfCode(ops.dtype);
  const act = COMPUTE_DTYPE_BYTES[compute];
  const hk = cfg.numKvHeads;
  const d = cfg.headDim;
  const hq = cfg.numHeads;
  const sizes = {
    k: blockSize * hk * d * KV_DTYPE_BYTES[kv],
    v: blockSize * hk * d * KV_DTYPE_BYTES[kv],
    key: hk * d * act,
    value: hk * d * act,
    q: hq * d * act,
    out: hq * d * act,
    ints: 16,
  };
  const ptrs: bigint[] = [];
  const alloc = (bytes: number) => {
    const p = dev.alloc(bytes);
    ptrs.push(p);
    dev.memset(p, 0, bytes);
    return p;
  };
  try {
    const cache: PagedCache = {
      kCache: alloc(sizes.k),
      vCache: alloc(sizes.v),
      numBlocks: 1,
      blockSize,
      numKvHeads: hk,
      headDim: d,
      kvDtype: code,
      kScale: 1,
      vScale: 1,
    };
    const key = alloc(sizes.key);
    const value = alloc(sizes.value);
    const q = alloc(sizes.q);
    const out = alloc(sizes.out);
    const ints = alloc(sizes.ints); // slot 0, block table [0], and seq_lens [1] below
    const seqLens = alloc(sizes.ints);
    dev.memset(seqLens, 1, 1); // int32 1 (little endian)
    ops.kvWrite(cache, key, value, ints, 1);
    ops.attentionDecode(out, q, cache, ints, seqLens, 0n, 0, 1, hq, 1, 0, 1 / Math.sqrt(d));
    dev.synchronize();
  } catch (e) {
    if (e instanceof HeadroomError && e.code === Status.UNSUPPORTED) {
      throw new KvCacheDtypeError(
        `--kv-cache-dtype: the ${dev.backend} backend does not implement a ${kv} KV cache with ${compute} activations ` +
          `(${e.message}); use --kv-cache-dtype auto (a ${compute} cache)`,
      );
    }
    throw e;
  } finally {
    for (const p of ptrs) dev.free(p);
  }
}
