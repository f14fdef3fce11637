#!/usr/bin/env bash
# The GPU machine's one command: configure and build the CUDA build, run the gpu-labelled tests
# (and compute-sanitizer memcheck on the kernel tests), run `radix bench model --device cuda` and
# bench/peer_torch.py on the same workloads, write everything under RESULTS_DIR and print a short
# table last.
#
#   scripts/gpu_check.sh [RESULTS_DIR]        (default build/gpu-results)
#
# Switches (environment):
#   GPU_CHECK_STEPS      comma list of build,test,sanitize,bench,profile,big,peer,gemm
#                        (default: all of them)
#   GPU_CHECK_MODELS     default "qwen3-0.6b,qwen3-8b"
#   GPU_CHECK_WORKLOADS  ";"-separated specs (default: the BENCHMARKS.md grid + rerank-like)
#   GPU_CHECK_PROFILE_WORKLOADS  specs for the profiled pass (default: same as the workloads)
#   GPU_CHECK_MODES      default "off,scatter,tree"
#   GPU_CHECK_WARMUP / GPU_CHECK_REPS   radix bench (default 2 / 5; for 8B GPU_CHECK_WARMUP_8B /
#                        GPU_CHECK_REPS_8B, default 1 / 3)
#   GPU_CHECK_PEER_IMPLS default "hf-eager,hf-sdpa,radixmlp-torch"; GPU_CHECK_PEER_REPS (3)
#   GPU_CHECK_TEST_REGEX ctest -R filter for the gpu tests (default: all); GPU_CHECK_TEST_JOBS (8)
#   BUILD_DIR            default build/cuda-release; GPU_CHECK_JOBS (default nproc)
#   GPU_CHECK_COMMIT     the commit to record (the device's copy of the tree may lack git)
# Steps: `profile` reruns the benchmark with RADIX_CUDA_PROFILE=1 for the per-op-kind breakdown
# (kept apart so the headline times carry no event overhead); `big` runs the 65,536-token batch
# on 8B (off and tree) to show it fits.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/gpu-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
steps=",${GPU_CHECK_STEPS:-build,test,sanitize,bench,profile,big,peer,gemm},"
has() { [[ $steps == *",$1,"* ]]; }
say() { echo "gpu_check: $*" >&2; }
status=0
fail() { say "FAILED: $*"; echo "$*" >>"$out/failures.txt"; status=1; }

build_dir=${BUILD_DIR:-build/cuda-release}
jobs=${GPU_CHECK_JOBS:-$(nproc)}
models=${GPU_CHECK_MODELS:-qwen3-0.6b,qwen3-8b}
modes=${GPU_CHECK_MODES:-off,scatter,tree}
default_workloads="syn:B=32,P=32,S=256;syn:B=32,P=256,S=256;syn:B=32,P=512,S=256;syn:B=32,P=2048,S=32;syn:B=32,P=2048,S=256;rerank-like:G=40,D=10"
IFS=';' read -r -a workloads <<<"${GPU_CHECK_WORKLOADS:-$default_workloads}"
IFS=';' read -r -a profile_workloads <<<"${GPU_CHECK_PROFILE_WORKLOADS:-${GPU_CHECK_WORKLOADS:-$default_workloads}}"
rm -f "$out/failures.txt"

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  # The device's copy of the tree may carry no git history: the caller can name the commit.
  echo "commit: ${GPU_CHECK_COMMIT:-$(git rev-parse --verify -q HEAD || echo unknown)}"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  nvcc --version | tail -1
  cmake --version | head -1
} | tee "$out/machine.txt" >&2

# radix's Debian libraries (scripts/device_deps.sh): only where they are not installed.
if [[ -d .devdeps && ! -f /usr/include/pcre2.h ]]; then
  bash scripts/device_deps.sh unpack >&2 || fail "device_deps unpack"
  # shellcheck disable=SC1091
  source /tmp/devroot/env.sh
fi

if has build; then
  t0=$SECONDS
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRADIX_TESTS=ON \
    -DRADIX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 ${RADIX_DEPS_CMAKE_ARGS:-} >"$out/configure.log" 2>&1 \
    || { tail -30 "$out/configure.log" >&2; fail "configure"; exit 1; }
  cmake --build "$build_dir" -j "$jobs" >"$out/build.log" 2>&1 \
    || { grep -E "error|FAILED" "$out/build.log" | head -40 >&2; fail "build"; exit 1; }
  say "built in $((SECONDS - t0)) s"
fi
radix="$build_dir/radix"

if has test; then
  t0=$SECONDS
  ctest --test-dir "$build_dir" -L gpu ${GPU_CHECK_TEST_REGEX:+-R "$GPU_CHECK_TEST_REGEX"} \
    --output-on-failure -j "${GPU_CHECK_TEST_JOBS:-8}" --timeout 300 >"$out/ctest.log" 2>&1 || fail "gpu tests"
  grep -E "tests passed|tests failed|The following tests|Failed|\*\*\*" "$out/ctest.log" | head -30 >&2
  say "gpu tests in $((SECONDS - t0)) s"
fi

if has sanitize; then
  t0=$SECONDS
  if command -v compute-sanitizer >/dev/null; then
    # memcheck over every kernel test and a few backend tests (whole forwards are too slow under it)
    for t in "cuda_kernels_test:*" "cuda_backend_test:*Norms*:*Gather*:*Attention*:*Embedding*"; do
      bin=${t%%:*}
      filter=${t#*:}
      timeout 150 compute-sanitizer --tool memcheck --error-exitcode 86 --print-limit 20 \
        "$build_dir/tests/backend/cuda/$bin" --gtest_filter="$filter" --gtest_brief=1 \
        >"$out/memcheck_$bin.log" 2>&1
      rc=$?
      if ((rc == 86)); then fail "memcheck found errors in $bin"
      elif ((rc != 0)); then fail "$bin failed under memcheck (rc $rc; memcheck itself: see log)"; fi
      tail -3 "$out/memcheck_$bin.log" >&2
    done
  else
    say "compute-sanitizer not found: memcheck skipped"
  fi
  say "sanitizer in $((SECONDS - t0)) s"
fi

bench_args=()
for w in "${workloads[@]}"; do bench_args+=(--workload "$w"); done
profile_args=()
for w in "${profile_workloads[@]}"; do profile_args+=(--workload "$w"); done
IFS=',' read -r -a model_list <<<"$models"

if has gemm; then
  # cuBLASLt's candidates on the projection shapes at the tree rows of syn P2048 S256 / S32.
  for m in "${model_list[@]}"; do
    timeout 120 "$build_dir/bench/gemm_bench" --model "$m" --rows 10240,3072 \
      >>"$out/gemm_bench.jsonl" 2>&1 || fail "gemm_bench $m"
  done
fi

if has bench; then
  for m in "${model_list[@]}"; do
    t0=$SECONDS
    warmup=${GPU_CHECK_WARMUP:-2} reps=${GPU_CHECK_REPS:-5}
    if [[ $m == qwen3-8b ]]; then warmup=${GPU_CHECK_WARMUP_8B:-1} reps=${GPU_CHECK_REPS_8B:-3}; fi
    timeout 400 "$radix" bench model --device cuda --model "random:$m" "${bench_args[@]}" \
      --modes "$modes" --warmup "$warmup" --repetitions "$reps" --json \
      >"$out/radix_$m.jsonl" 2>"$out/radix_$m.log" || fail "radix bench $m"
    say "radix bench $m in $((SECONDS - t0)) s"
  done
fi

if has profile; then
  for m in "${model_list[@]}"; do
    t0=$SECONDS
    RADIX_CUDA_PROFILE=1 timeout 300 "$radix" bench model --device cuda --model "random:$m" \
      "${profile_args[@]}" \
      --modes "$modes" --warmup 1 --repetitions 2 --json \
      >"$out/radix_${m}_profile.jsonl" 2>"$out/radix_${m}_profile.log" || fail "radix profile $m"
    say "radix profile $m in $((SECONDS - t0)) s"
  done
fi

if has big; then
  t0=$SECONDS
  # 32 x 2048 = 65,536 tokens: the 8B forward must fit (off: 65,536 rows; tree: 33,792).
  RADIX_CUDA_PROFILE=1 timeout 200 "$radix" bench model --device cuda --model random:qwen3-8b \
    --workload "syn:B=32,P=1024,S=1024" --modes off,tree --warmup 1 --repetitions 2 --json \
    >"$out/radix_big.jsonl" 2>"$out/radix_big.log" || fail "radix 65,536-token 8B batch"
  say "big batch in $((SECONDS - t0)) s"
fi

if has peer; then
  peer_args=()
  for w in "${workloads[@]}"; do peer_args+=(--workload "$w"); done
  for m in "${model_list[@]}"; do
    t0=$SECONDS
    PYTHONUNBUFFERED=1 timeout 400 python3 bench/peer_torch.py --model "$m" "${peer_args[@]}" \
      --impls "${GPU_CHECK_PEER_IMPLS:-hf-eager,hf-sdpa,radixmlp-torch}" --warmup 1 \
      --repetitions "${GPU_CHECK_PEER_REPS:-3}" --json --check \
      >"$out/peer_$m.jsonl" 2>"$out/peer_$m.log" || fail "peer_torch $m"
    tail -2 "$out/peer_$m.log" >&2
    say "peer_torch $m in $((SECONDS - t0)) s"
  done
fi

# The short table: radix (tree and off) against the peers, per model and workload.
python3 - "$out" <<'PY' || true
import glob, json, os, sys
out = sys.argv[1]
rows = []
for path in sorted(glob.glob(os.path.join(out, "*.jsonl"))):
    if not os.path.basename(path).startswith(("radix_", "peer_")):
        continue  # gemm_bench.jsonl: other fields
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            r["_file"] = os.path.basename(path)
            rows.append(r)
prof = {(r["model"], r["workload"], r["mode"]): r for r in rows if "_profile" in r["_file"] or r["_file"] == "radix_big.jsonl"}
main = [r for r in rows if r["_file"].startswith("radix_") and "_profile" not in r["_file"]]
peers = {(r["model"], r["workload"], r["mode"]): r for r in rows if r["_file"].startswith("peer_")}
if main:
    print(f"{'model':18s} {'workload':24s} {'mode':8s} {'ms':>8s} {'TFLOP/s':>8s} {'x off':>6s} {'flop_x':>6s} "
          f"{'gemm':>7s} {'attn':>7s} {'other':>7s} {'host':>7s} {'peak GiB':>8s} {'eager':>8s} {'sdpa':>8s} {'rmlp':>8s}")
for r in main:
    key = (r["model"], r["workload"], r["mode"])
    p = prof.get(key, {})
    def peer(impl):
        q = peers.get((r["model"], r["workload"], impl))
        return f"{q['median_ms']:8.1f}" if q and "median_ms" in q else ("     oom" if q else "       -")
    f = lambda k, w=7: f"{p[k]:{w}.1f}" if k in p else " " * (w - 1) + "-"
    print(f"{r['model']:18s} {r['workload']:24s} {r['mode']:8s} {r['median_ms']:8.1f} {r['tflops_effective']:8.1f} "
          f"{(r.get('speedup_vs_off') or 0):6.2f} {r['flop_ratio_vs_off']:6.2f} {f('gpu_gemm_ms')} {f('gpu_attention_ms')} "
          f"{f('gpu_other_ms')} {f('host_and_gaps_ms')} {r.get('gpu_peak_mib', 0) / 1024:8.1f} "
          f"{peer('hf-eager')} {peer('hf-sdpa')} {peer('radixmlp-torch')}")
PY
if [[ -f $out/failures.txt ]]; then
  echo "gpu_check: FAILED steps: $(paste -sd ';' "$out/failures.txt")"
else
  echo "gpu_check: all steps passed"
fi
exit $status
