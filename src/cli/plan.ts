// `headroom plan`: the memory planner on the command line (no device needed).
import { readFileSync } from "node:fs";

import { planFromRequest, planTable, type PlanRequest } from "../memory/plan-request.ts";
import { parseBytes } from "../server/options.ts";

const HELP = `Usage: headroom plan (--model PATH|synthetic:SPEC | --config config.json) [flags]

Predicts weights, activation arena, KV blocks/tokens, max concurrency and whether weights
must be offloaded, for a device of --device-memory bytes. Flags:
  --model PATH               HF folder, .gguf file or synthetic:110m-style spec
  --config FILE              an HF config.json (instead of --model)
  --backend cuda|cpu         [cuda]
  --dtype auto|float32|bfloat16|float16  compute dtype; auto = bf16 (cuda), fp32 (cpu) [auto]
  --device-memory BYTES      total device memory, e.g. 80GiB            [80GiB]
  --gpu-memory-utilization F [0.9]
  --max-model-len N          [the model's]
  --max-num-seqs N           [256]
  --max-num-batched-tokens N
  --block-size N             [16]
  --kv-cache-memory-bytes B
  --enforce-eager            no graph capture
  --cpu-offload-gb G         keep G GiB of layer weights in host memory
  --cpu-offload-trigger-percent P  weights on the device until usage reaches P% of total
  --offload-prefetch-layers N  staging slots for offloaded layers   [2]
                             (default: layers are offloaded automatically when needed)
  --json                     print JSON instead of a table`;

export function planCommand(argv: string[]): number {
  const req: PlanRequest = { deviceMemoryBytes: 80 * 2 ** 30 };
  let json = false;
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
      const val = () => {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new Error(`${flag} needs a value`);
        return v;
      };
      const num = () => {
        const v = Number(val());
        if (!Number.isFinite(v)) throw new Error(`${flag} needs a number`);
        return v;
      };
      switch (flag) {
        case "--help":
        case "-h":
          console.log(HELP);
          return 0;
        case "--model": req.model = val(); break;
        case "--config": req.config = JSON.parse(readFileSync(val(), "utf8")) as Record<string, unknown>; break;
        case "--backend": {
          const b = val();
          if (b !== "cuda" && b !== "cpu") throw new Error(`--backend must be cuda or cpu (got ${b})`);
          req.backend = b;
          break;
        }
        case "--dtype": {
          const d = val();
          if (d !== "auto" && d !== "float32" && d !== "bfloat16" && d !== "float16") throw new Error(`--dtype must be auto, float32, bfloat16 or float16 (got ${d})`);
          req.dtype = d;
          break;
        }
        case "--device-memory": req.deviceMemoryBytes = parseBytes(val()); break;
        case "--gpu-memory-utilization": req.gpuMemoryUtilization = num(); break;
        case "--max-model-len": req.maxModelLen = num(); break;
        case "--max-num-seqs": req.maxNumSeqs = num(); break;
        case "--max-num-batched-tokens": req.maxNumBatchedTokens = num(); break;
        case "--block-size": req.blockSize = num(); break;
        case "--kv-cache-memory-bytes": req.kvCacheMemoryBytes = parseBytes(val()); break;
        case "--enforce-eager": req.enforceEager = true; break;
        case "--cpu-offload-gb": req.cpuOffloadGb = num(); break;
        case "--cpu-offload-trigger-percent": req.cpuOffloadTriggerPercent = num(); break;
        case "--offload-prefetch-layers": req.offloadPrefetchLayers = num(); break;
        case "--json": json = true; break;
        default:
          throw new Error(`unknown flag '${a}'`);
      }
    }
    const r = planFromRequest(req);
    console.log(json ? JSON.stringify(r, null, 2) : planTable(r));
    return r.plan.fits ? 0 : 3;
  } catch (e) {
    console.error(`headroom plan: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
}
