#!/usr/bin/env bash
# The GPU machine has CUDA, cmake and ninja but none of radix's Debian libraries and no network.
#   scripts/device_deps.sh fetch    here: download the .deb files into .devdeps/ (git-ignored; name
#                                   it in the device call's `carry`)
#   scripts/device_deps.sh unpack   there: unpack them under /tmp/devroot and write
#                                   /tmp/devroot/env.sh, which exports RADIX_DEPS_CMAKE_ARGS (flags
#                                   that make cmake find them) and LD_LIBRARY_PATH; source it
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(libcli11-dev nlohmann-json3-dev libgtest-dev googletest libpcre2-dev libpcre2-8-0 libutf8proc-dev
      libutf8proc2 libopenblas-dev libopenblas0 libopenblas-pthread-dev libopenblas0-pthread libgfortran5
      libboost1.74-dev
      libbenchmark-dev libbenchmark1debian)
root=/tmp/devroot
case "${1:-}" in
  fetch)
    mkdir -p .devdeps
    (cd .devdeps && apt-get download "${pkgs[@]}" >/dev/null)
    du -sh .devdeps
    ;;
  unpack)
    mkdir -p "$root"
    for f in .devdeps/*.deb; do dpkg -x "$f" "$root"; done
    arch=x86_64-linux-gnu
    # Debian routes libopenblas through alternatives; make the plain names exist.
    ln -sf "$root/usr/lib/$arch/openblas-pthread/libopenblas.so.0" "$root/usr/lib/$arch/libopenblas.so"
    ln -sf "$root/usr/include/$arch/openblas-pthread/cblas.h" "$root/usr/include/cblas.h"
    ln -sf "$root/usr/include/$arch/openblas-pthread/openblas_config.h" "$root/usr/include/openblas_config.h"
    cat >"$root/env.sh" <<ENV
export RADIX_DEPS_CMAKE_ARGS="-DCMAKE_PREFIX_PATH=$root/usr -DCMAKE_LIBRARY_PATH=$root/usr/lib/$arch"
export LD_LIBRARY_PATH="$root/usr/lib/$arch:$root/usr/lib/$arch/openblas-pthread:\${LD_LIBRARY_PATH:-}"
ENV
    echo "device_deps: unpacked $(ls .devdeps/*.deb | wc -l) packages under $root; source $root/env.sh"
    ;;
  *) echo "usage: $0 fetch|unpack" >&2; exit 2 ;;
esac
