#!/usr/bin/env bash
# Builds the test suite into build/test and runs everything: ctest (GoogleTest) and the Python tests
# (pytest, in a virtualenv filled from PyPI when it can be reached).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=Release -DRADIX_TESTS=ON
cmake --build build/test -j "$jobs"
ctest --test-dir build/test --output-on-failure -j "$jobs"

venv=build/venv
if [[ ! -x $venv/bin/pytest ]]; then
  python3 -m venv "$venv"
  if ! "$venv/bin/pip" install -q -r tests/python/requirements.txt; then
    echo "test.sh: PyPI unreachable; installing pytest alone from what pip can find" >&2
    "$venv/bin/pip" install -q pytest requests || true
  fi
fi
if [[ ! -x $venv/bin/pytest ]]; then
  echo "test.sh: FAILED: pytest could not be installed, so the Python tests did not run" >&2
  exit 1
fi
RADIX_BIN="$PWD/build/test/radix" "$venv/bin/pytest" -q tests/python
