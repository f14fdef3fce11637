#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine: installs the packages radix needs and builds a release
# build into build/. Idempotent. Pass --no-apt to skip the package step.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--no-apt" ]]; then
  mapfile -t pkgs < <(grep -v '^#' scripts/deps.txt)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRADIX_TESTS=OFF
cmake --build build -j "$jobs"
echo "setup: built build/radix"
