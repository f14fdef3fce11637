#!/usr/bin/env bash
# Tokenizer throughput: radix (`radix bench tokenize`) and Hugging Face `tokenizers`
# (bench/tokenizer_peer.py), one thread each, on the dl19 passages, in one run on one machine.
# Usage: bench/tokenizer_bench.sh [BUILD_DIR]   (default build/tok; venv: $VENV or build/venv)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/tok}
venv=${VENV:-build/venv}
assets=../shared/assets
if [[ ! -f $assets/msmarco/dl19_bm25_top100.json || ! -f $assets/qwen3-embedding-0.6b/tokenizer.json ]]; then
  echo "tokenizer_bench: skipped: ../shared/assets (msmarco, qwen3-embedding-0.6b) is missing" >&2
  exit 0
fi
if [[ ! -f $build/build.ninja ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j2 --target radix >/dev/null
if ! "$venv/bin/python" -c "import tokenizers" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tokenizers
fi

echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# commit: $(git rev-parse --short HEAD)$(git diff --quiet -- src/tokenizer || echo ' (src/tokenizer modified)')"
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/radix" bench tokenize --json --repetitions 10 \
  --tokenizer "$assets/qwen3-embedding-0.6b/tokenizer.json" \
  --passages "$assets/msmarco/dl19_bm25_top100.json"
"$venv/bin/python" bench/tokenizer_peer.py --repetitions 5 \
  --tokenizer "$assets/qwen3-embedding-0.6b/tokenizer.json" \
  --passages "$assets/msmarco/dl19_bm25_top100.json"
