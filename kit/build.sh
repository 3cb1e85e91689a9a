#!/usr/bin/env bash
# make gpu-kit: one archive for a no-network GPU machine (see kit/gpu-check.sh): the prebuilt
# libraries (CUDA: sm_80 + sm_90a SASS + compute_90 PTX), Bun (the npm bun package's binary,
# xz-compressed), the runtime node_modules (closure of package.json "dependencies"), src/,
# test/ (with test/gpu/torch, the PyTorch reference), bench/, scripts/gpu-sanitize.sh, the
# stories260K fixtures (models/, as HEADROOM_MODELS_DIR) and gpu-check.sh + kit/report.ts.
# Fails if the archive exceeds 48 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=headroom-gpu-kit
# Staged outside the repository: a copy of test/ under build/ would be found by `bun test`.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
STAGE=$TMP/$NAME
OUTF=build/$NAME.tar.xz
LIMIT=$((48 * 1024 * 1024))
for lib in build/libheadroom_cpu.so build/libheadroom_cuda.so; do
  [ -f "$lib" ] || { echo "gpu-kit: $lib is missing (make native with nvcc on PATH)" >&2; exit 1; }
done
BUNBIN=$(readlink -f "$(command -v bun || echo node_modules/bun/bin/bun.exe)")
[ -x "$BUNBIN" ] || { echo "gpu-kit: no bun binary found" >&2; exit 1; }
rm -rf build/gpu-kit && mkdir -p "$STAGE/build" "$STAGE/tools" "$STAGE/node_modules"
cp build/libheadroom_cpu.so build/libheadroom_cuda.so "$STAGE/build/"
cp -r src test package.json tsconfig.json "$STAGE/"
if [ -f bunfig.toml ]; then cp bunfig.toml "$STAGE/"; fi
mkdir -p "$STAGE/bench" && (cd bench && tar cf - --exclude=out .) | (cd "$STAGE/bench" && tar xf -)
cp kit/gpu-check.sh "$STAGE/"
mkdir -p "$STAGE/kit" "$STAGE/scripts" "$STAGE/models"
cp kit/report.ts "$STAGE/kit/"
cp scripts/gpu-sanitize.sh "$STAGE/scripts/"
# the small model fixtures the engine suites use when present (../shared/models)
MODELS=${HEADROOM_MODELS_DIR:-../shared/models}
if [ -f "$MODELS/stories260K/stories260K.gguf" ]; then
  mkdir -p "$STAGE/models/stories260K"
  cp "$MODELS/stories260K/stories260K.gguf" "$MODELS/stories260K/LICENSE" "$STAGE/models/stories260K/"
else
  echo "gpu-kit: note: $MODELS/stories260K/stories260K.gguf not found (the suites using it skip)"
fi
# runtime dependency closure, copied from the installed node_modules
"$BUNBIN" -e '
  const fs = require("fs"), path = require("path");
  const seen = new Set(), todo = Object.keys(JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies ?? {});
  while (todo.length) {
    const n = todo.pop();
    // type-only packages (peers of the OpenAPI tooling; never loaded by the engine or tests)
    if (n === "typescript" || n === "bun-types" || n.startsWith("@types/")) continue;
    if (seen.has(n) || !fs.existsSync(path.join("node_modules", n, "package.json"))) continue;
    seen.add(n);
    const p = JSON.parse(fs.readFileSync(path.join("node_modules", n, "package.json"), "utf8"));
    todo.push(...Object.keys(p.dependencies ?? {}), ...Object.keys(p.peerDependencies ?? {}));
  }
  console.log([...seen].join("\n"));' > "$TMP/deps.txt"
while read -r dep; do
  mkdir -p "$STAGE/node_modules/$(dirname "$dep")"
  cp -r "node_modules/$dep" "$STAGE/node_modules/$dep"
done < "$TMP/deps.txt"
xz -T2 -6 -c "$BUNBIN" > "$STAGE/tools/bun.xz"
tar -C "$TMP" -cf - "$NAME" | xz -T2 -6 > "$OUTF"
size=$(stat -c %s "$OUTF")
echo "gpu-kit: $OUTF ($(awk "BEGIN{printf \"%.1f\", $size / 1048576}") MiB of 48, $(wc -l < "$TMP/deps.txt") runtime packages)"
[ "$size" -le "$LIMIT" ] || { echo "gpu-kit: archive exceeds 48 MiB" >&2; exit 1; }
