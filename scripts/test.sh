#!/usr/bin/env bash
# Builds the test suite and runs everything: ctest (GoogleTest) and the Python tests (pytest, in a
# virtualenv filled from PyPI when it can be reached).
# It builds in build/, the release build scripts/setup.sh makes, with the tests switched on: after
# setup.sh only the tests are left to compile (on a fresh machine it builds everything).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRADIX_TESTS=ON
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"
# Once more with OpenBLAS's AVX2 (Haswell/Zen) kernels, whatever this CPU has: they round by GEMM
# row position where the AVX-512 ones do not, so order-dependent results would show up here
# (about 30 s).
OPENBLAS_CORETYPE=Haswell ctest --test-dir build --output-on-failure -j "$jobs"

venv=build/venv
[[ -x $venv/bin/pip ]] || python3 -m venv "$venv"
# Every run, so a requirement added since the venv was made is installed (quick when satisfied).
if ! "$venv/bin/pip" install -q -r tests/python/requirements.txt; then
  echo "test.sh: PyPI unreachable; installing pytest alone from what pip can find" >&2
  "$venv/bin/pip" install -q pytest requests || true
fi
if [[ ! -x $venv/bin/pytest ]]; then
  echo "test.sh: FAILED: pytest could not be installed, so the Python tests did not run" >&2
  exit 1
fi
RADIX_BIN="$PWD/build/radix" "$venv/bin/pytest" -q tests/python

# The Python package (python/, docs/python.md). Its own venv on Debian's python3 with the system
# site-packages, so that Debian's python3-torch (scripts/deps.txt) runs the radix.torch tests.
# The module is built through build/ (-DRADIX_PYTHON=ON: only the binding and nanobind compile;
# radix's libraries are reused) and tested from build/python; then `pip install .` is checked the
# way a user runs it (its CMake tree is kept in build/pip-wheel, so a rerun rebuilds nothing).
pyvenv=build/venv-py
pybin=/usr/bin/python3
[[ -x $pybin ]] || pybin=$(command -v python3)
[[ -x $pyvenv/bin/pip ]] || "$pybin" -m venv --system-site-packages "$pyvenv"
# numpy < 2 throughout: Debian's torch 1.13 is built against numpy 1 and cannot hand arrays to a
# numpy 2 that a newer wheel (Ray's dependencies) would pull in; pyarrow 18 and later need numpy 2.
"$pyvenv/bin/pip" install -q -r python/requirements-test.txt "numpy<2"  # every run: new entries
# radix.ray's test (tests/python/test_py_ray.py) on a local Ray cluster: ray[data] is about 80 MB
# of wheels (about 70 s to install the first time, 600 MB in the venv); where pip cannot get it the
# test is skipped and says so.
"$pyvenv/bin/pip" install -q "ray[data]" "numpy<2" "pyarrow<18" ||
  echo "test.sh: ray[data] could not be installed; test_py_ray.py will be skipped" >&2
cmake -S . -B build -DRADIX_PYTHON=ON -DPython_EXECUTABLE="$PWD/$pyvenv/bin/python" >/dev/null
cmake --build build --target _core -j "$jobs"
PYTHONPATH=build/python RADIX_PY_TESTS=1 "$pyvenv/bin/python" -m radix version
RADIX_BIN="$PWD/build/radix" PYTHONPATH=build/python RADIX_PY_TESTS=1 \
  "$pyvenv/bin/pytest" -q -rs tests/python/test_py_*.py tests/python/test_bench_peer_torch.py
# The wheel is built without the engine (RADIX_PYTHON_ENGINE=OFF): the packaging path is the same
# and the engine's libraries, compiled once above, would take minutes to compile again here.
"$pyvenv/bin/pip" install -q --no-build-isolation --config-settings=build-dir=build/pip-wheel \
  --config-settings=cmake.define.RADIX_PYTHON_ENGINE=OFF .
(cd build && RADIX_PY_TESTS=1 "../$pyvenv/bin/python" -m radix version)
RADIX_PY_TESTS=1 "$pyvenv/bin/pytest" -q tests/python/test_py_fold.py

# Where nvcc is installed, compile (not run: no GPU here) the CUDA backend library, which holds all
# of radix's device code and the CudaBackend against backend.h; about 80 s on 2 cores.
# RADIX_CI_CUDA=0 skips it.
nvcc_bin=$(command -v nvcc || true)
[[ -z $nvcc_bin && -x /usr/local/cuda/bin/nvcc ]] && nvcc_bin=/usr/local/cuda/bin/nvcc
if [[ ${RADIX_CI_CUDA:-1} != 0 && -n $nvcc_bin ]]; then
  cmake -S . -B build/cuda-ci -G Ninja -DCMAKE_BUILD_TYPE=Release -DRADIX_TESTS=OFF \
    -DRADIX_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc_bin" -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
  cmake --build build/cuda-ci --target radix_backend_cuda -j "$jobs"
else
  echo "test.sh: no nvcc: the CUDA backend was not compiled" >&2
fi
