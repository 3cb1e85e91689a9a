// `--model ORG/NAME[@REVISION][:QUANT]`: a Hugging Face Hub repo id rather than a local path.
// `@REVISION` is a branch, tag or commit; `:QUANT` (e.g. Q4_K_M) picks one GGUF file of a
// GGUF repo (as llama.cpp's -hf does).

export interface RepoSpec {
  /** "ORG/NAME" */
  repo: string;
  revision: string;
  /** GGUF quantization name, e.g. "Q4_K_M"; null = not given. */
  quant: string | null;
}

const PART = "[A-Za-z0-9][A-Za-z0-9._-]*";
const SPEC = new RegExp(`^(${PART}/${PART})(?:@([^:@\\s]+))?(?::([A-Za-z0-9_]+))?$`);

/** Parses a repo spec; null when `value` is not one (a local path, a synthetic spec, ...). */
export function parseRepoSpec(value: string): RepoSpec | null {
  if (value.startsWith(".") || value.startsWith("/") || value.startsWith("~")) return null;
  const m = SPEC.exec(value);
  if (!m || m[1]!.split("/").some((p) => p === "." || p === ".." || p.endsWith(".git"))) return null;
  return { repo: m[1]!, revision: m[2] ?? "main", quant: m[3] ?? null };
}

export function formatRepoSpec(s: RepoSpec): string {
  return `${s.repo}${s.revision !== "main" ? `@${s.revision}` : ""}${s.quant ? `:${s.quant}` : ""}`;
}
