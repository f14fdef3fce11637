#!/usr/bin/env bash
# What a prefix-cache hit of L tokens saves against what using it costs, to choose the cache's
# minimum prefix length (docs/prefix_cache.md). For each L: `radix bench model` stream workload
# (N requests one at a time, each an L-token shared prefix + S own tokens), cache off and on with
# the minimum set to 1 so that every hit is used; prints the median ms per request of each and the
# saving (off - on), in wall time and in CPU time (saved_% is of CPU time). A hit pays where the
# saving is above the run-to-run noise.
#
# Each L runs its workload twice in one process and reports the second pair (warm): wall-clock
# medians and the process's CPU time per request (median). With one CPU thread (THREADS, default
# 1) the CPU time is the work itself, what other jobs on a shared machine do not disturb much.
#
#   bench/prefix_min_length.sh [RADIX_BIN]     (default build/radix)
#
# Environment: MODEL (default Qwen3-0.6B's layer shape with 4 layers instead of 28: per layer, a
# token's work and a hit's bookkeeping are the 0.6B's, so their ratio is too), DEVICE (cpu), THREADS,
# LENGTHS (default 1,2,4,8,16,32,64,128), S (own tokens, default 8), N (requests, default 24),
# MODES (default tree).
set -euo pipefail
cd "$(dirname "$0")/.."
radix=${1:-build/radix}
model=${MODEL:-random:hidden=1024,layers=4,heads=16,kv_heads=8,head_dim=128,intermediate=3072}
threads=${THREADS:-1}
device=${DEVICE:-cpu}
suffix=${S:-8}
n=${N:-24}
modes=${MODES:-tree}
echo "model $model, device $device, threads $threads, S=$suffix, N=$n, modes $modes"
printf '%-5s %-5s %9s %9s %9s %9s %9s %9s %8s %6s\n' L mode off_ms on_ms saved_ms off_cpu on_cpu saved_cpu saved_% hit
IFS=, read -ra lengths <<<"${LENGTHS:-1,2,4,8,16,32,64,128}"
for l in "${lengths[@]}"; do
  w="stream:P=$l,S=$suffix,N=$n"
  "$radix" bench model --model "$model" --device "$device" --threads "$threads" --modes "$modes" \
    --json --workload "$w" --workload "$w" --prefix-cache-min-tokens 1 2>/dev/null |
    python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
rows = rows[len(rows) // 2:]  # the second run of the workload
for r in rows:
    if not r["mode"].endswith("+cache"):
        continue
    base = next(o for o in rows if o["mode"] == r["mode"][:-6])
    off, on, mode, hit = base["median_ms"], r["median_ms"], base["mode"], r["hit_rate"]
    off_cpu, on_cpu = base["cpu_ms"], r["cpu_ms"]
    print(f"{sys.argv[1]:<5} {mode:<5} {off:>9.2f} {on:>9.2f} {off - on:>9.2f} "
          f"{off_cpu:>9.2f} {on_cpu:>9.2f} {off_cpu - on_cpu:>9.2f} "
          f"{100 * (off_cpu - on_cpu) / off_cpu:>7.1f}% {hit:>6.3f}")
' "$l"
done
