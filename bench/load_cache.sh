#!/usr/bin/env bash
# The prefix cache through `radix serve` (docs/prefix_cache.md), cache off and on in one run:
#   stream  bench/load.py's stream:P=..,S=.. workload (/embed, one request at a time, a shared
#           P-token prefix + S own tokens), an embedding model
#   dl19    the TREC DL19 rerank set at concurrency 1 (one batch per query, the template shared
#           across requests), the same shape with the reranker head
# Prints one table (requests/s, p50/p99 ms, the server's cache hit rate, cache-on speed-up, and the
# server's CPU seconds per request: on a shared CPU machine steadier than wall time) and
# writes load.jsonl, summary.txt and the servers' logs under RESULTS_DIR.
#
#   bench/load_cache.sh [RESULTS_DIR]      (default build/load-cache-results)
#
# Environment:
#   DEVICE           cpu (default), cuda, cuda:0 or cuda:0,cuda:1 (one worker per device)
#   MODEL            the random shape; default random:qwen3-0.6b on a GPU, and on the CPU a
#                    4-layer model with Qwen3-0.6B's layer shape (the full one takes minutes a request)
#   DL19_MODEL       dl19's shape (default: MODEL on a GPU, a 2-layer 512-wide one on the CPU)
#   STREAM           default stream:P=2048,S=64;  STREAM_REQUESTS (default 64 GPU, 8 CPU)
#   DL19_QUERIES     the first N DL19 queries (default all 43 on a GPU, 4 on the CPU)
#   DL19_CONCURRENCY default 1
#   CACHE_MIB        the cache-on budget per device (default 4096)
#   STEPS            comma list of stream,dl19 (default both)
#   BUILD_DIR        GPU: default build/cuda-release, built here if its radix is missing;
#                    CPU: default build. RADIX_ASSETS: default ../shared/assets
# On the GPU machine copy the assets and .devdeps as bench/load_gpu.sh says, then
#   RADIX_ASSETS=.assets DEVICE=cuda:0 bash bench/load_cache.sh $OUT
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/load-cache-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
say() { echo "load_cache: $*" >&2; }
device=${DEVICE:-cpu}
gpu=0
[[ $device == cuda* ]] && gpu=1
steps=",${STEPS:-stream,dl19},"
has() { [[ $steps == *",$1,"* ]]; }
assets=${RADIX_ASSETS:-../shared/assets}
export RADIX_ASSETS=$assets
tokenizer=$assets/qwen3-embedding-0.6b
if ((gpu)); then
  build_dir=${BUILD_DIR:-build/cuda-release}
  model=${MODEL:-random:qwen3-0.6b}
  dl19_model=${DL19_MODEL:-$model}
  stream_requests=${STREAM_REQUESTS:-64}
  dl19_queries=${DL19_QUERIES:-0}
  extra="--max-batch-tokens 32768 --max-client-batch-size 128 --max-input-length 8192"
else
  build_dir=${BUILD_DIR:-build}
  model=${MODEL:-random:hidden=1024,layers=4,heads=16,kv_heads=8,head_dim=128,intermediate=3072}
  dl19_model=${DL19_MODEL:-random:hidden=512,layers=2,heads=8,kv_heads=4,head_dim=64,intermediate=1536}
  stream_requests=${STREAM_REQUESTS:-8}
  dl19_queries=${DL19_QUERIES:-4}
  extra="--max-batch-tokens 16384 --max-client-batch-size 128 --max-input-length 8192"
fi
stream=${STREAM:-stream:P=2048,S=64}
cache_mib=${CACHE_MIB:-4096}
if [[ ! -f $tokenizer/tokenizer.json ]]; then
  say "needs $tokenizer (set RADIX_ASSETS)"
  exit 2
fi

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ local changes)')"
  echo "device: $device"
  if ((gpu)); then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  else
    echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  fi
} | tee "$out/machine.txt" >&2

if ((gpu)) && [[ -d .devdeps && ! -f /usr/include/pcre2.h ]]; then
  bash scripts/device_deps.sh unpack >&2 || { say "device_deps unpack failed"; exit 1; }
  # shellcheck disable=SC1091
  source /tmp/devroot/env.sh
fi
radix="$build_dir/radix"
if [[ ! -x $radix ]]; then
  t0=$SECONDS
  cuda_args=""
  ((gpu)) && cuda_args="-DRADIX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 ${RADIX_DEPS_CMAKE_ARGS:-}"
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRADIX_TESTS=OFF $cuda_args \
    >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log" >&2; exit 1; }
  cmake --build "$build_dir" -j "$(nproc)" --target radix >"$out/build.log" 2>&1 \
    || { grep -E "error|FAILED" "$out/build.log" | head -40 >&2; exit 1; }
  say "built in $((SECONDS - t0)) s"
fi

: >"$out/load.jsonl"
for cache in off on; do
  mib=0
  [[ $cache == on ]] && mib=$cache_mib
  if has stream; then
    say "stream ($stream), cache $cache"
    python3 bench/load.py --radix-bin "$radix" --workload "$stream" --concurrency 1 \
      --requests "$stream_requests" --label "cache-$cache" --serve-args "--model $model \
        --tokenizer $tokenizer --device $device --prefix-cache-mib $mib $extra" \
      >>"$out/load.jsonl" 2>>"$out/serve-stream-$cache.log" \
      || say "FAILED: stream cache $cache (see $out/serve-stream-$cache.log)"
  fi
  if has dl19; then
    say "dl19 (${dl19_queries/#0/43} queries), cache $cache"
    python3 bench/load.py --radix-bin "$radix" --workload dl19 --dl19-queries "$dl19_queries" \
      --concurrency "${DL19_CONCURRENCY:-1}" --label "cache-$cache" --serve-args "--model \
        $dl19_model:reranker --tokenizer $tokenizer --device $device --prefix-cache-mib $mib \
        --attention-mode tree $extra" \
      >>"$out/load.jsonl" 2>>"$out/serve-dl19-$cache.log" \
      || say "FAILED: dl19 cache $cache (see $out/serve-dl19-$cache.log)"
  fi
done

python3 - "$out/load.jsonl" <<'PY' | tee "$out/summary.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"{'workload':<22} {'cache':<5} {'conc':>4} {'reqs':>5} {'req/s':>8} {'p50 ms':>9} {'p99 ms':>9} "
      f"{'hit rate':>8} {'vs off':>7} {'cpu s/req':>9} {'cpu vs off':>10}  workers")
for r in rows:
    off = next((o for o in rows if o["workload"] == r["workload"] and o["label"] == "cache-off"
                and o["concurrency"] == r["concurrency"]), None)
    speed = f"{r['requests_per_s'] / off['requests_per_s']:.2f}x" if off and off["requests_per_s"] else "-"
    workers = " ".join(f"{w}:{n}" for w, n in r.get("worker_batches", {}).items())
    cpu = r.get("server_cpu_s_per_request")
    cpu_off = off.get("server_cpu_s_per_request") if off else None
    cpu_x = f"{cpu_off / cpu:.2f}x" if cpu and cpu_off else "-"
    print(f"{r['workload']:<22} {r['label'][6:]:<5} {r['concurrency']:>4} {r['ok']:>5} "
          f"{r['requests_per_s']:>8.2f} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} "
          f"{r['cache_hit_rate']:>8.3f} {speed:>7} {cpu if cpu is not None else '-':>9} {cpu_x:>10}  {workers}")
PY
