#!/usr/bin/env bash
# The attention kernels alone, without the rest of the CUDA backend: builds the GPU test and the
# micro-benchmark with plain nvcc/g++ (no CMake, so it works while the rest of the tree is being
# wired) and, on a GPU machine, runs them.
#   scripts/attention_check.sh build [BUILD_DIR]        compile only (works without a GPU)
#   scripts/attention_check.sh run RESULTS_DIR [BUILD_DIR]
#       builds if BUILD_DIR has no binaries that start here, then: the test, the benchmark,
#       PyTorch's flash attention on the same batches (skipped with ATTN_SKIP_TORCH=1), and
#       compute-sanitizer memcheck and racecheck on a few cases; logs and JSON lines go to
#       RESULTS_DIR.
# The ctest route (label gpu) is tests/backend/cuda/CMakeLists.txt; scripts/gpu_check.sh runs it.
set -uo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
case "$cmd" in
  build) build=${2:-build/attn/bin} ;;
  run)
    results=${2:?usage: $0 run RESULTS_DIR [BUILD_DIR]}
    build=${3:-build/attn/bin}
    ;;
  *) echo "usage: $0 build [BUILD_DIR] | run RESULTS_DIR [BUILD_DIR]" >&2; exit 2 ;;
esac

cuda_home=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
gtest_root=/usr
if [[ ! -f /usr/include/gtest/gtest.h ]]; then
  bash scripts/device_deps.sh unpack >/dev/null && gtest_root=/tmp/devroot/usr
fi

build_all() {
  mkdir -p "$build"
  local inc=(-Isrc -Ibench -Itests/backend/cuda -I"$cuda_home/include" -I"$gtest_root/include")
  local nv=(nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -DRADIX_ATTENTION_SM90A -lineinfo -Isrc)
  local cxx=(g++ -std=c++20 -O2 -Wall -Wextra "${inc[@]}")
  "${nv[@]}" -c src/backend/cuda/attention.cu -o "$build/attention.o" &
  "${cxx[@]}" -c bench/attention_bench.cc -o "$build/attention_bench.o" &
  "${cxx[@]}" -c src/core/fold_plan.cc -o "$build/fold_plan.o" &
  "${cxx[@]}" -c bench/workloads.cc -o "$build/workloads.o" &
  "${cxx[@]}" -c tests/backend/cuda/attention_test.cc -o "$build/attention_test.o" &
  local failed=0
  for job in $(jobs -p); do wait "$job" || failed=1; done
  [[ $failed == 0 ]] || { echo "attention_check: compile failed" >&2; return 1; }
  local libs=(-L"$cuda_home/lib64" -lcudart_static -ldl -lrt -lpthread)
  g++ -o "$build/attention_test" "$build/attention_test.o" "$build/attention.o" \
    "$build/fold_plan.o" -L"$gtest_root/lib/x86_64-linux-gnu" -lgtest_main -lgtest "${libs[@]}" &&
    g++ -o "$build/attention_bench" "$build/attention_bench.o" "$build/attention.o" \
      "$build/workloads.o" "$build/fold_plan.o" "${libs[@]}"
}

if [[ $cmd == build ]]; then
  build_all && echo "attention_check: built $build/attention_test and $build/attention_bench"
  exit $?
fi

mkdir -p "$results"
if ! "$build/attention_test" --gtest_list_tests >/dev/null 2>&1; then
  echo "attention_check: no runnable binaries in $build; building here"
  build=build/attn-device
  build_all 2>&1 | tee "$results/build.log" || exit 1
fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader |
  tee "$results/attention_test.log"
status=0
if command -v cuobjdump >/dev/null; then
  echo "HGMMA instructions in the test binary: $(cuobjdump --dump-sass "$build/attention_test" |
    grep -c HGMMA)" | tee -a "$results/attention_test.log"
fi
# Eight shards in parallel: the CPU reference dominates the test's time.
shard_dir=$(mktemp -d)
for i in 0 1 2 3 4 5 6 7; do
  GTEST_TOTAL_SHARDS=8 GTEST_SHARD_INDEX=$i timeout 240 "$build/attention_test" --gtest_brief=1 \
    >"$shard_dir/$i.log" 2>&1 &
done
for job in $(jobs -p); do wait "$job" || status=1; done
cat "$shard_dir"/*.log >>"$results/attention_test.log"
grep -hE "^\[  (PASSED|FAILED) |tests from .* ran" "$shard_dir"/*.log
grep -hE "Failure|relative L2|unwritten|outside|FAILED|Expected|Which is|error" "$shard_dir"/*.log |
  head -n 80
shapes=$(mktemp)
"$build/attention_bench" --tiles fa2_q64 --reps 3 --warmup 0 --shapes "$shapes" >/dev/null
# Tree == varlen on the flat batch at full scale, for the candidate default shapes.
"$build/attention_bench" --check \
  --tiles fa2_q64,wgmma_ws_q128_n128,wgmma_ws_q128_n64 \
  2>&1 | grep "^check" | tee "$results/attention_check.log"
grep -q "^check" "$results/attention_check.log" || status=1
grep -q FAILED "$results/attention_check.log" && status=1
# One process per tile shape, so that a kernel fault in one leaves the others measured.
all_tiles="fa2_q64 wgmma_ws_q128_n128 wgmma_ws_q128_n64"
for tiles in ${ATTN_TILES:-$all_tiles}; do
  "$build/attention_bench" --tiles "$tiles" --json "$results/attention_bench.jsonl" 2>&1 |
    tee -a "$results/attention_bench.log" || status=1
done
if [[ -z ${ATTN_SKIP_TORCH:-} ]]; then
  PYTHONUNBUFFERED=1 python3 bench/attention_sdpa.py "$shapes" \
    --json "$results/attention_torch.jsonl" 2>&1 | tee "$results/attention_torch.log" || status=1
fi
cases='*len129_fa2_q64_hq8*:*many_short_fa2_q64_hq4_hkv2*:*syn_like_fa2_q64_hq4_hkv4*'
cases+=':*random2_pad7_wgmma_ws_q128_n128_hq4_hkv2*:*len129_wgmma_ws_q128_n128_hq8*'
cases+=':*mixed_wgmma_ws_q128_n128_hq4_hkv4*:*many_short_wgmma_ws_q128_n64_hq4_hkv2*'
cases+=':*deep_chain_wgmma_ws_q128_n64_hq8*'
if command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    timeout 120 compute-sanitizer --tool "$tool" --error-exitcode 3 "$build/attention_test" \
      --gtest_brief=1 --gtest_filter="$cases" 2>&1 | tail -n 15 |
      tee -a "$results/sanitizer.log" || status=1
  done
else
  echo "attention_check: compute-sanitizer not found; not run" | tee "$results/sanitizer.log"
fi
echo "attention_check: exit status $status"
exit $status
