#!/usr/bin/env bash
# The serving benchmark on the GPU machine: the dl19 rerank set end to end (43 /rerank requests of
# 100 BM25 passages each, ../shared/assets/msmarco/dl19_bm25_top100.json) through `radix serve` with
# random:qwen3-0.6b:reranker weights, --attention-mode off and tree, then Hugging Face transformers
# (eager and sdpa) scoring the same pairs on the same GPU. Writes load.jsonl and summary.txt under
# RESULTS_DIR and prints the summary (target: tree >= 1.6x off and >= 4x HF).
#
#   bench/load_gpu.sh [RESULTS_DIR]        (default build/load-gpu-results)
#
# Environment: BUILD_DIR (default build/cuda-release; built here if its radix is missing),
# LOAD_GPU_CONCURRENCY (default 1,4), LOAD_GPU_STEPS (comma list of radix,hf; default both),
# LOAD_GPU_SERVE_ARGS (extra `radix serve` arguments), RADIX_ASSETS (default ../shared/assets).
#
# ../shared does not travel to the GPU machine. Copy what this needs (about 14 MB) into a folder
# git ignores and carry it with .devdeps (scripts/device_deps.sh fetch):
#   echo /.assets/ >> .git/info/exclude
#   mkdir -p .assets/msmarco .assets/qwen3-embedding-0.6b
#   cp ../shared/assets/msmarco/dl19_bm25_top100.json .assets/msmarco/
#   cp ../shared/assets/qwen3-embedding-0.6b/{config.json,tokenizer.json,tokenizer_config.json} \
#      .assets/qwen3-embedding-0.6b/
# then run (carry [".devdeps", ".assets"]): RADIX_ASSETS=.assets bash bench/load_gpu.sh $OUT
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/load-gpu-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
say() { echo "load_gpu: $*" >&2; }
steps=",${LOAD_GPU_STEPS:-radix,hf},"
has() { [[ $steps == *",$1,"* ]]; }
build_dir=${BUILD_DIR:-build/cuda-release}
levels=${LOAD_GPU_CONCURRENCY:-1,4}
assets=${RADIX_ASSETS:-../shared/assets}
export RADIX_ASSETS=$assets
if [[ ! -f $assets/msmarco/dl19_bm25_top100.json || ! -f $assets/qwen3-embedding-0.6b/tokenizer.json ]]; then
  say "needs $assets/msmarco/dl19_bm25_top100.json and $assets/qwen3-embedding-0.6b (set RADIX_ASSETS)"
  exit 2
fi

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ local changes)')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
} | tee "$out/machine.txt" >&2

if [[ -d .devdeps && ! -f /usr/include/pcre2.h ]]; then
  bash scripts/device_deps.sh unpack >&2 || { say "device_deps unpack failed"; exit 1; }
  # shellcheck disable=SC1091
  source /tmp/devroot/env.sh
fi
radix="$build_dir/radix"
if has radix && [[ ! -x $radix ]]; then
  t0=$SECONDS
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRADIX_TESTS=OFF -DRADIX_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 ${RADIX_DEPS_CMAKE_ARGS:-} >"$out/configure.log" 2>&1 \
    || { tail -30 "$out/configure.log" >&2; exit 1; }
  cmake --build "$build_dir" -j "$(nproc)" --target radix >"$out/build.log" 2>&1 \
    || { grep -E "error|FAILED" "$out/build.log" | head -40 >&2; exit 1; }
  say "built in $((SECONDS - t0)) s"
fi

: >"$out/load.jsonl"
if has radix; then
  for mode in off tree; do
    say "radix serve, attention $mode"
    python3 bench/load.py --radix-bin "$radix" --workload dl19 --concurrency "$levels" \
      --label "radix-$mode" --serve-args "--model random:qwen3-0.6b:reranker \
        --tokenizer $assets/qwen3-embedding-0.6b --device cuda:0 --attention-mode $mode \
        --max-batch-tokens 32768 --max-client-batch-size 128 --max-input-length 8192 \
        ${LOAD_GPU_SERVE_ARGS:-}" >>"$out/load.jsonl" 2>>"$out/serve-$mode.log" \
      || say "FAILED: radix $mode (see $out/serve-$mode.log)"
  done
fi
if has hf; then
  for attn in eager sdpa; do
    say "Hugging Face transformers, attention $attn"
    python3 bench/load.py --hf --hf-attention "$attn" --hf-device cuda --label "hf-$attn" \
      >>"$out/load.jsonl" 2>>"$out/hf-$attn.log" || say "FAILED: hf $attn (see $out/hf-$attn.log)"
  done
fi

python3 - "$out/load.jsonl" <<'PY' | tee "$out/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'label':<12} {'conc':>4} {'seconds':>8} {'req/s':>7} {'pairs/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'compression':>11}")
for r in rows:
    print(f"{r['label']:<12} {r.get('concurrency', 1):>4} {r['seconds']:>8.3f} {r['requests_per_s']:>7.2f} "
          f"{r['inputs_per_s']:>9.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {str(r.get('compression', '-')):>11}")
def secs(label, conc=1):
    for r in rows:
        if r["label"] == label and r.get("concurrency", 1) == conc:
            return r["seconds"]
tree, off = secs("radix-tree"), secs("radix-off")
if tree and off:
    print(f"tree vs off (concurrency 1): {off / tree:.2f}x  (target >= 1.6x)")
for hf in ("hf-eager", "hf-sdpa"):
    h = secs(hf)
    if tree and h:
        print(f"tree vs {hf}: {h / tree:.2f}x  (target >= 4x)")
PY
