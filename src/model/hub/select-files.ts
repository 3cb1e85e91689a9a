// Which files of a repo a model needs: the HF folder files (config, generation config,
// tokenizer, chat template, safetensors with their index), or exactly one GGUF file chosen by
// --gguf-file or a quantization name. Nothing else is downloaded (no .bin/.pth/.onnx copies,
// no other quantizations).

export interface RepoFile {
  path: string;
  size: number;
}

export class HubSelectionError extends Error {
  override name = "HubSelectionError";
}

const HF_FILES = new Set([
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "tokenizer.model",
  "vocab.json",
  "merges.txt",
  "added_tokens.json",
  "chat_template.jinja",
  "chat_template.json",
  "model.safetensors.index.json",
]);

const isGguf = (p: string) => p.toLowerCase().endsWith(".gguf");
const topLevel = (p: string) => !p.includes("/");
const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** The files to fetch; `repo` names the repository in messages. */
export function selectFiles(
  repo: string,
  files: readonly RepoFile[],
  opts: { ggufFile?: string | null; quant?: string | null },
): RepoFile[] {
  const ggufs = files.filter((f) => isGguf(f.path));
  const wantGguf = (opts.ggufFile ?? null) !== null || (opts.quant ?? null) !== null;
  const safetensors = files.filter((f) => topLevel(f.path) && f.path.endsWith(".safetensors"));
  if (!wantGguf && (safetensors.length > 0 || ggufs.length === 0)) {
    const picked = files.filter((f) => topLevel(f.path) && (HF_FILES.has(f.path) || f.path.endsWith(".safetensors")));
    if (!picked.some((f) => f.path === "config.json"))
      throw new HubSelectionError(`${repo} has no config.json (nor GGUF files): not a model repository headroom can load`);
    if (safetensors.length === 0)
      throw new HubSelectionError(`${repo} has no .safetensors weights (only safetensors and GGUF are supported)`);
    return picked;
  }
  if (ggufs.length === 0) throw new HubSelectionError(`${repo} has no .gguf files (--gguf-file / :QUANT need a GGUF repository)`);
  const names = ggufs.map((f) => f.path).join(", ");
  let candidates: RepoFile[];
  if (opts.ggufFile) {
    candidates = ggufs.filter((f) => f.path === opts.ggufFile || base(f.path) === opts.ggufFile);
    if (candidates.length === 0) throw new HubSelectionError(`${repo} has no GGUF file named ${opts.ggufFile}; it has: ${names}`);
  } else if (opts.quant) {
    // The quant as a whole word of the file name: "Q4_K" must not pick "Q4_K_M" ('_' belongs to quant names).
    const q = new RegExp(`(^|[-._])${opts.quant}([-.]|$)`, "i");
    candidates = ggufs.filter((f) => q.test(base(f.path).replace(/\.gguf$/i, "")));
    if (candidates.length === 0) throw new HubSelectionError(`${repo} has no GGUF file for quantization ${opts.quant}; it has: ${names}`);
  } else {
    candidates = ggufs;
  }
  if (candidates.some((f) => /-\d{5}-of-\d{5}\.gguf$/i.test(f.path)))
    throw new HubSelectionError(`${repo}: ${candidates.map((f) => f.path).join(", ")} is a split GGUF, which headroom does not load`);
  if (candidates.length > 1)
    throw new HubSelectionError(
      `${repo} has several GGUF files (${candidates.map((f) => f.path).join(", ")}); choose one with --gguf-file NAME or ${repo}:QUANT`,
    );
  return candidates;
}
