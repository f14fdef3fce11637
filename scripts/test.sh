#!/usr/bin/env bash
# Builds the test suite (build/test, release with asserts kept by the tests) and runs everything:
# ctest (GoogleTest) and the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=Release -DRADIX_TESTS=ON
cmake --build build/test -j "$jobs"
ctest --test-dir build/test --output-on-failure -j "$jobs"
